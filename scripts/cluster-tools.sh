#!/usr/bin/env bash
# Build the tools that run a real Kubernetes control plane for the cluster tests (and the Pulumi CLI
# pieces), from Go modules at the versions pinned in tools/versions.env, into a cache outside the
# repository. A second run finds everything cached and takes a second or two.
#
#   bash scripts/cluster-tools.sh [--print-bin-dir] [--prune] [cluster|pulumi|gateway|all|TOOL...]
#
#   cluster (default)  kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl),
#                      etcd, kwok, crds (published CRDs of the pinned Gateway API, Envoy Gateway and
#                      Inference Extension releases, copied from their modules: bin/published-crds/)
#   pulumi             python-host (Pulumi's Python language host and pulumi-language-python-exec),
#                      pulumi-language-python (lets the CLI use that older host), pulumi (CLI),
#                      pulumi-kubernetes (provider)
#   gateway            egctl (Envoy Gateway's CLI, for its offline translator)
#   all                the three groups
#   TOOL               one of the tools above alone
#   --print-bin-dir    print the bin directory and exit, building nothing
#   --prune            after building, delete the cached builds that bin/ no longer links to
#
# Cache: ${SLM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slm-deploy-tools}
#   builds/<tool>-<version>-<hash>/   one finished build; the hash covers the wrapper module
#                                     (tools/go/<tool>/), the link flags and the Go version
#   bin/                              symbolic links to the binaries of the pinned builds
# Progress and build times go to stderr; the last line on stdout is the bin directory.
# Exit status: 0 built or cached, 1 a build failed, 2 usage, 3 Go is not installed.
# Go's own module and build caches (GOMODCACHE, GOCACHE) are used as configured.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${SLM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slm-deploy-tools}"
BIN="$CACHE/bin"
JOBS="${SLM_TOOLS_BUILD_JOBS:-2}"

# shellcheck source=../tools/versions.env
. "$ROOT/tools/versions.env"

log() { printf 'cluster-tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The groups, each in the order their users need them: the two small Python language pieces before the
# CLI and the provider (about 18 minutes each cold on two cores).
CLUSTER_TOOLS=(kubernetes etcd kwok crds)
PULUMI_TOOLS=(python-host pulumi-language-python pulumi pulumi-kubernetes)
GATEWAY_TOOLS=(egctl)

targets=()
prune=""
for arg in "$@"; do
  case "$arg" in
    --print-bin-dir) echo "$BIN"; exit 0 ;;
    --prune) prune=1 ;;
    -h|--help) usage ;;
    cluster) targets+=("${CLUSTER_TOOLS[@]}") ;;
    pulumi) targets+=("${PULUMI_TOOLS[@]}") ;;
    gateway) targets+=("${GATEWAY_TOOLS[@]}") ;;
    all) targets+=("${CLUSTER_TOOLS[@]}" "${PULUMI_TOOLS[@]}" "${GATEWAY_TOOLS[@]}") ;;
    kubernetes|etcd|kwok|crds|python-host|pulumi-language-python|pulumi|pulumi-kubernetes|egctl) targets+=("$arg") ;;
    *) log "unknown argument: $arg"; usage ;;
  esac
done
[ "${#targets[@]}" -gt 0 ] || targets=("${CLUSTER_TOOLS[@]}")

if ! command -v go >/dev/null 2>&1; then
  log "error: go is not installed (Go 1.26 or later builds these tools)"
  exit 3
fi

export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
GO_ID="$(go env GOVERSION GOOS GOARCH | tr '\n' ' ')"

mkdir -p "$CACHE/builds" "$CACHE/work" "$BIN"

# One build at a time: a caller with something to build (another pytest worker, another shell) waits
# for the build lock, then looks again and usually finds it cached. Cached tools need no lock.
exec 9>"$CACHE/.build.lock"
build_lock() {
  if ! flock -n 9; then
    log "another build holds $CACHE/.build.lock; waiting for it"
    flock 9
  fi
}

# The wrapper module must require the version pinned in versions.env.
check_pin() {  # tool module version
  local gomod="$ROOT/tools/go/$1/go.mod"
  [ -f "$gomod" ] || die "$gomod is missing"
  if ! grep -Eq "^(require )?[[:space:]]*$2 $3( |$)" "$gomod"; then
    die "tools/go/$1/go.mod does not require $2 $3 (tools/versions.env): update both together"
  fi
}

wrapper_hash() {  # tool salt...
  local tool="$1"; shift
  {
    (cd "$ROOT/tools/go/$tool" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    printf '%s\n' "$GO_ID" "$@"
  } | sha256sum | cut -c1-12
}

link_bins() {  # build-dir name...
  local dir="$1"; shift
  local name tmp
  for name in "$@"; do
    # A new link renamed over the old one: a reader never finds the name missing.
    tmp="$BIN/.$name.$$"
    ln -sfn "../builds/$(basename "$dir")/$name" "$tmp"
    mv -Tf "$tmp" "$BIN/$name"
  done
}

# build TOOL VERSION LDFLAGS PREPARE "NAME=PACKAGE ..." [EXTRA_NAMES] [SALT]
#   PREPARE is a function run with (work dir, output dir) before compiling, or "-".
#   EXTRA_NAMES are files PREPARE put into the output dir that are linked into bin/ as well.
#   SALT is anything else the build depends on (it goes into the cache key).
build() {
  local tool="$1" version="$2" ldflags="$3" prepare="$4" specs="$5" extras="${6:-}" salt="${7:-}"
  local key out work spec name pkg start names=()
  key="$tool-$version-$(wrapper_hash "$tool" "$ldflags" "$specs" "$extras" "$salt")"
  out="$CACHE/builds/$key"
  for spec in $specs; do names+=("${spec%%=*}"); done
  # shellcheck disable=SC2206
  names+=($extras)
  if [ ! -f "$out/.complete" ]; then
    build_lock
  fi
  if [ -f "$out/.complete" ]; then
    log "$tool $version: cached"
    link_bins "$out" "${names[@]}"
    flock -u 9
    return 0
  fi
  local tool_start=$SECONDS
  work="$CACHE/work/$key"
  rm -rf "$work" "$out.partial"
  mkdir -p "$work" "$out.partial"
  cp -R "$ROOT/tools/go/$tool/." "$work/"
  if [ "$prepare" != "-" ]; then
    "$prepare" "$work" "$out.partial"
  fi
  for spec in $specs; do
    name="${spec%%=*}"
    pkg="${spec#*=}"
    start=$SECONDS
    log "building $name ($tool $version) ..."
    if ! (cd "$work" && go build -p "$JOBS" -trimpath -ldflags "$ldflags" -o "$out.partial/$name" "$pkg"); then
      die "go build of $pkg ($tool $version) failed"
    fi
    log "built $name in $((SECONDS - start)) s"
  done
  touch "$out.partial/.complete"
  rm -rf "$out"
  mv "$out.partial" "$out"
  rm -rf "$work"
  link_bins "$out" "${names[@]}"
  flock -u 9
  log "$tool $version: built in $((SECONDS - tool_start)) s"
}

module_dir() {  # module@version -> its directory in the module cache (downloads it)
  (cd "$CACHE/work" && GOFLAGS=-mod=mod go mod download -json "$1") |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# --- the tools -------------------------------------------------------------------------------------

build_kubernetes() {
  check_pin kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
  local v="$KUBERNETES_VERSION" minor stale
  minor="$(echo "$v" | cut -d. -f2)"
  # Every staging module must be replaced by the release made with this Kubernetes release.
  stale="$(grep -E '^[[:space:]]*k8s\.io/[^ ]+ => ' "$ROOT/tools/go/kubernetes/go.mod" | grep -vE " v0\.${v#v1.}\$" || true)"
  [ -z "$stale" ] || die "tools/go/kubernetes/go.mod replaces staging modules at other versions than v0.${v#v1.}: $stale"
  # The version the API server reports (/version, kubectl version, the Pulumi provider's checks);
  # without it a module build reports v0.0.0-master.
  local ld="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  build kubernetes "$v" "$ld" - \
    "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver
     kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager
     kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler
     kubectl=k8s.io/kubernetes/cmd/kubectl"
}

build_etcd() {
  check_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  build etcd "$ETCD_VERSION" "-s -w" - "etcd=go.etcd.io/etcd/server/v3"
}

prepare_kwok() {  # work out
  # The kwok binary plays node and pod lifecycles from Stage objects given in its configuration
  # (kwokctl writes them for its clusters); the module ships the default ones as YAML, so the
  # release's own stages are collected into one configuration file next to the binary.
  local dir f
  dir="$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")/kustomize/stage"
  : > "$2/kwok-stages.yaml"
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$dir/$f" ] || die "$f not found in sigs.k8s.io/kwok@$KWOK_VERSION"
    { echo "---"; cat "$dir/$f"; } >> "$2/kwok-stages.yaml"
  done
}

build_kwok() {
  check_pin kwok sigs.k8s.io/kwok "$KWOK_VERSION"
  build kwok "$KWOK_VERSION" "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" prepare_kwok \
    "kwok=sigs.k8s.io/kwok/cmd/kwok" "kwok-stages.yaml"
}

prepare_python_host() {  # work out
  # The host runs a program through pulumi-language-python-exec, which it looks for next to its own
  # (resolved) executable only. The script is part of the sdk/v3 module tree; the one of the Python SDK's
  # release is used (the host's own is far older).
  local sdk
  sdk="$(module_dir "github.com/pulumi/pulumi/sdk/v3@$PULUMI_SDK_VERSION")"
  [ -n "$sdk" ] && [ -f "$sdk/python/cmd/pulumi-language-python-exec" ] ||
    die "pulumi-language-python-exec not found in github.com/pulumi/pulumi/sdk/v3@$PULUMI_SDK_VERSION"
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$2/pulumi-language-python-exec"
}

build_python_host() {
  check_pin python-host github.com/pulumi/pulumi/sdk/v3 "$PULUMI_PYTHON_HOST_VERSION"
  # Only the host is linked into bin/; the exec script stays beside it in the build folder.
  build python-host "$PULUMI_PYTHON_HOST_VERSION" \
    "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_PYTHON_HOST_VERSION" \
    prepare_python_host \
    "pulumi-language-python-host=github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python" \
    "" "exec sdk $PULUMI_SDK_VERSION"
}

build_pulumi_language_python() {
  # The project's own command (tools/go/pulumi-language-python/*.go), at the CLI's protocol version.
  check_pin pulumi-language-python github.com/pulumi/pulumi/sdk/v3 "$PULUMI_VERSION"
  build pulumi-language-python "$PULUMI_VERSION" "-s -w" - "pulumi-language-python=."
}

build_pulumi() {
  check_pin pulumi github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION"
  build pulumi "$PULUMI_VERSION" \
    "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    - "pulumi=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
}

prepare_pulumi_kubernetes() {  # work out
  # The provider embeds its package schema with the release version written into it; the module has
  # the schema (cmd/pulumi-resource-kubernetes/schema.json) but not the generated embed files.
  local mod="github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_KUBERNETES_PROVIDER_VERSION" dir
  dir="$(module_dir "$mod")/cmd/pulumi-resource-kubernetes"
  [ -f "$dir/schema.json" ] || die "schema.json not found in $mod"
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to write the provider's schema"
  python3 - "$dir" "$1" "${PULUMI_KUBERNETES_PROVIDER_VERSION#v}" <<'PY'
import json, sys
src, dst, version = sys.argv[1:4]
with open(f"{src}/schema.json", encoding="utf-8") as f:
    schema = json.load(f)
schema["version"] = version
with open(f"{dst}/schema-embed.json", "w", encoding="utf-8") as f:
    json.dump(schema, f, separators=(",", ":"))
with open(f"{src}/terraform-mapping.json", encoding="utf-8") as f:
    mapping = json.load(f)
with open(f"{dst}/terraform-mapping-embed.json", "w", encoding="utf-8") as f:
    json.dump(mapping, f, separators=(",", ":"))
PY
}

# The published CRDs: "module@version path" of each file, for the kinds slm-deploy renders.
PUBLISHED_CRDS=(
  "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml"
  "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION config/crd/standard/gateway.networking.k8s.io_gateways.yaml"
  "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"
  "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml"
  "github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION charts/gateway-crds-helm/templates/generated/gateway.envoyproxy.io_backends.yaml"
  "github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION charts/gateway-crds-helm/templates/generated/gateway.envoyproxy.io_backendtrafficpolicies.yaml"
  "github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION charts/gateway-crds-helm/templates/generated/gateway.envoyproxy.io_envoyproxies.yaml"
  "github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION charts/gateway-crds-helm/templates/generated/gateway.envoyproxy.io_httproutefilters.yaml"
  "github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION charts/gateway-crds-helm/templates/generated/gateway.envoyproxy.io_securitypolicies.yaml"
  "sigs.k8s.io/gateway-api-inference-extension@$INFERENCE_EXTENSION_VERSION config/crd/bases/inference.networking.k8s.io_inferencepools.yaml"
)

build_crds() {
  local key out spec module file dir
  key="crds-$(printf '%s\n' "${PUBLISHED_CRDS[@]}" | sha256sum | cut -c1-12)"
  out="$CACHE/builds/$key"
  if [ ! -f "$out/.complete" ]; then
    build_lock
  fi
  if [ -f "$out/.complete" ]; then
    log "crds: cached"
    link_bins "$out" published-crds
    return 0
  fi
  local tool_start=$SECONDS
  rm -rf "$out.partial"
  mkdir -p "$out.partial/published-crds"
  for spec in "${PUBLISHED_CRDS[@]}"; do
    module="${spec%% *}"
    file="${spec#* }"
    dir="$(module_dir "$module")"
    [ -f "$dir/$file" ] || die "$file not found in $module"
    # Envoy Gateway's copies are Helm templates whose only template lines are the {{ if }} and {{ end }}
    # around the document.
    grep -v '^{{' "$dir/$file" > "$out.partial/published-crds/$(basename "$file")"
  done
  touch "$out.partial/.complete"
  rm -rf "$out"
  mv "$out.partial" "$out"
  link_bins "$out" published-crds
  log "crds: copied in $((SECONDS - tool_start)) s"
}

build_pulumi_kubernetes() {
  check_pin pulumi-kubernetes github.com/pulumi/pulumi-kubernetes/provider/v4 "$PULUMI_KUBERNETES_PROVIDER_VERSION"
  local v="$PULUMI_KUBERNETES_PROVIDER_VERSION"
  build pulumi-kubernetes "$v" \
    "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${v#v}" \
    prepare_pulumi_kubernetes "pulumi-resource-kubernetes=."
}

build_egctl() {
  check_pin egctl github.com/envoyproxy/gateway "$ENVOY_GATEWAY_VERSION"
  build egctl "$ENVOY_GATEWAY_VERSION" "-s -w" - "egctl=github.com/envoyproxy/gateway/cmd/egctl"
}

total_start=$SECONDS
declare -A done_tools=()
for tool in "${targets[@]}"; do
  [ -z "${done_tools[$tool]:-}" ] || continue
  done_tools[$tool]=1
  "build_${tool//-/_}"
done
if [ -n "$prune" ]; then
  build_lock
  linked="$(for link in "$BIN"/*; do readlink "$link"; done | sed -n 's|^\.\./builds/\([^/]*\)/.*|\1|p' | sort -u)"
  for dir in "$CACHE"/builds/*/; do
    dir="${dir%/}"
    if ! grep -qxF "$(basename "$dir")" <<<"$linked"; then
      log "pruning $(basename "$dir")"
      rm -rf "$dir"
    fi
  done
  flock -u 9
fi
log "all requested tools ready in $((SECONDS - total_start)) s"
echo "$BIN"
