#!/usr/bin/env bash
# Convert the real SmolLM2-135M-Instruct model (the Q4_1 GGUF file that scripts/llama-server.sh reads out of its
# pinned wheel) to the ONNX Runtime GenAI format with the project's own preparation code
# (python -m slm_onnx_server.prepare), into a cache outside the repository. tests/smollm2 serves the result
# with the project's ONNX server, and converts again to prove the conversion each run.
#
#   bash scripts/smollm2-onnx.sh [venv|model]     (default: model)
#
# Cache: ${SLM_ONNX_CONVERT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slm-deploy-onnx-convert}
#   venv-<hash>/           the conversion virtualenv: servers/onnx/requirements.txt + requirements-build.txt
#                          (the preparation image's packages); the hash covers both files and the Python version
#   models/smollm2-<hash>/ the converted model; the hash covers the GGUF's sha256, the precision, both
#                          requirement files and the conversion code (servers/onnx/slm_onnx_server/prepare*.py)
# stdout: "python=PATH" (the virtualenv's interpreter) for venv; "model=PATH" for model. Progress goes to stderr.
# Exit status: 0 converted or cached, 1 a step failed, 2 usage, 3 no Python 3.11-3.13.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${SLM_ONNX_CONVERT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slm-deploy-onnx-convert}"
SERVER_DIR="$ROOT/servers/onnx"
REQUIREMENTS=("$SERVER_DIR/requirements.txt" "$SERVER_DIR/requirements-build.txt")
# The preparation's own choice: INT4 mixed with INT8 (k_quant_mixed; docs/onnx-server.md).
PRECISION=auto

log() { printf 'smollm2-onnx: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

want=model
[ "$#" -le 1 ] || usage
case "${1:-model}" in
  venv) want=venv ;;
  model) want=model ;;
  -h|--help) usage ;;
  *) log "unknown argument: $1"; usage ;;
esac

pick_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))' 2>/dev/null; then
      printf '%s\n' "$candidate"
      return
    fi
  done
  log "error: Python 3.11 to 3.13 is required"
  exit 3
}

mkdir -p "$CACHE/models"

# One install or conversion at a time (pytest workers may ask together); cached results need no lock.
exec 9>"$CACHE/.lock"
take_lock() {
  if ! flock -n 9; then
    log "another run holds $CACHE/.lock; waiting for it"
    flock 9
  fi
}

hash_of() { sha256sum | cut -c1-12; }

venv_dir() {
  local python=$1 version
  version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  printf '%s\n' "$CACHE/venv-py$version-$(cat "${REQUIREMENTS[@]}" | hash_of)"
}

# The conversion virtualenv. torch's Linux wheel needs its nvidia-* CUDA wheels even to import (it loads
# libcudart and cuBLAS at import time), so it is installed with its dependencies: about 3 GB, once per cache.
make_venv() {
  local python dir started
  python="$(pick_python)"
  dir="$(venv_dir "$python")"
  if [ -x "$dir/bin/python" ] && [ -f "$dir/.complete" ]; then printf '%s\n' "$dir"; return; fi
  take_lock
  if [ -x "$dir/bin/python" ] && [ -f "$dir/.complete" ]; then printf '%s\n' "$dir"; return; fi
  rm -rf "$dir"
  started=$SECONDS
  log "creating the conversion virtualenv (torch with its CUDA wheels, about 3 GB): a few minutes"
  "$python" -m venv "$dir" >&2 || die "cannot create a virtualenv in $dir"
  local requirement_args=() file
  for file in "${REQUIREMENTS[@]}"; do requirement_args+=(--requirement "$file"); done
  "$dir/bin/python" -m pip install --quiet --progress-bar off --no-cache-dir "${requirement_args[@]}" >&2 ||
    { rm -rf "$dir"; die "pip install of the conversion requirements failed"; }
  touch "$dir/.complete"
  log "conversion virtualenv ready in $((SECONDS - started)) s"
  printf '%s\n' "$dir"
}

gguf_model() {
  local line
  line="$(bash "$ROOT/scripts/llama-server.sh" model)" || die "scripts/llama-server.sh model failed"
  [ "${line%%=*}" = model ] || die "scripts/llama-server.sh model printed no model=PATH"
  printf '%s\n' "${line#model=}"
}

convert_model() {
  local gguf out key venv started
  gguf="$(gguf_model)"
  [ -f "$gguf.sha256" ] || die "$gguf has no .sha256 beside it"
  key="$( { cat "$gguf.sha256"; printf '%s\n' "$PRECISION"; cat "${REQUIREMENTS[@]}" \
    "$SERVER_DIR"/slm_onnx_server/prepare*.py; } | hash_of)"
  out="$CACHE/models/smollm2-$key"
  if [ -f "$out/genai_config.json" ]; then printf '%s\n' "$out"; return; fi
  venv="$(make_venv)"
  take_lock
  started=$SECONDS
  log "converting $(basename "$gguf") to ONNX Runtime GenAI (precision $PRECISION, cpu)"
  PYTHONPATH="$SERVER_DIR" "$venv/bin/python" -m slm_onnx_server.prepare --source "$gguf" --output "$out" \
    --precision "$PRECISION" --execution-provider cpu >&2 || die "the conversion failed"
  log "converted in $((SECONDS - started)) s"
  printf '%s\n' "$out"
}

# Each result is taken into a variable first: a failure inside $(…) then stops the script (set -e).
case "$want" in
  venv) venv="$(make_venv)"; printf 'python=%s\n' "$venv/bin/python" ;;
  model) model="$(convert_model)"; printf 'model=%s\n' "$model" ;;
esac
