#!/usr/bin/env bash
# The Pulumi CLI built from Go modules (scripts/cluster-tools.sh pulumi), for machines without the official
# one (docs/local-cluster.md). Takes what `pulumi` takes:
#
#   bash scripts/pulumi.sh up --stack local --yes --policy-pack policies --policy-pack-config policies/config/dev.json
#
# What it arranges around the CLI:
#   - the CLI, the Python language host (with the project's pulumi-language-python in front of it) and the
#     Kubernetes provider are found on PATH, built on the first run (about 40 minutes cold on two cores);
#     the project's .venv/bin comes next, so a policy pack (PulumiPolicy.yaml names no virtualenv) runs
#     with the project's Python, as with an activated virtualenv;
#   - state outside the repository, in $SLM_PULUMI_STATE_DIR (default ${XDG_STATE_HOME:-~/.local/state}/slm-deploy/pulumi):
#     PULUMI_HOME (plugins, workspace settings) and, unless PULUMI_BACKEND_URL is set, a local file backend;
#   - PULUMI_CONFIG_PASSPHRASE, unless it or PULUMI_CONFIG_PASSPHRASE_FILE is set, is "slm-deploy-local": the
#     secrets of stacks made here are only as safe as that (fine on a local cluster; set your own otherwise);
#   - nothing in the repository is written. The CLI writes into a stack's file (`encryptionsalt:` when a
#     stack is created), so it runs in a shadow of the project, state/projects/<hash of this folder>/: links
#     to every entry of the repository except stacks/, and stacks/ holding a copy of each stack file, taken
#     afresh from the repository on every run, that keeps only the secrets provider lines the CLI added.
#     Paths on the command line are therefore relative to the repository root, whatever the current folder;
#   - `up` and `preview` of a stack the backend does not know create it first (`stack select --create`).
# SLM_PULUMI_PROJECT names another project folder to run in instead of the shadow (the tests run copies of
# the project with stack files of their own); the CLI may write into it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${SLM_PULUMI_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/slm-deploy/pulumi}"
SHADOW="$STATE/projects/$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)"

# The program and the pack run with the project's virtualenv.
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  bash "$ROOT/scripts/run.sh" plan >/dev/null
fi
if [ -n "${SLM_PULUMI_BIN_DIR:-}" ]; then
  bin_dir="$SLM_PULUMI_BIN_DIR"
else
  bin_dir="$(bash "$ROOT/scripts/cluster-tools.sh" pulumi | tail -n 1)"
fi
for tool in pulumi pulumi-language-python pulumi-language-python-host pulumi-resource-kubernetes; do
  [ -x "$bin_dir/$tool" ] || { echo "pulumi.sh: $tool missing from $bin_dir (scripts/cluster-tools.sh pulumi builds it)" >&2; exit 1; }
done

# --- the shadow project ---------------------------------------------------------------------------
mkdir -p "$SHADOW/stacks" "$STATE/home" "$STATE/backend"

shadow_project() {
  for entry in "$ROOT"/* "$ROOT"/.[!.]*; do
    [ -e "$entry" ] || continue
    name="$(basename "$entry")"
    case "$name" in stacks|.git) continue ;; esac
    ln -sfn "$entry" "$SHADOW/$name"
  done
  for link in "$SHADOW"/* "$SHADOW"/.[!.]*; do  # entries since removed from the repository
    if [ -L "$link" ] && [ ! -e "$link" ]; then rm -f "$link"; fi
  done
  secrets_lines='^(encryptionsalt|secretsprovider|encryptedkey):'
  for file in "$ROOT"/stacks/Pulumi.*.yaml; do
    [ -e "$file" ] || continue
    copy="$SHADOW/stacks/$(basename "$file")"
    kept=""
    # A stack file that carries its own secrets provider is taken as it is; otherwise the lines the CLI
    # added to the copy (its salt) stay, so its secrets keep decrypting.
    if ! grep -Eq "$secrets_lines" "$file" && [ -f "$copy" ]; then
      kept="$(grep -E "$secrets_lines" "$copy" || true)"
    fi
    { [ -z "$kept" ] || printf '%s\n' "$kept"; cat "$file"; } > "$copy.tmp"
    mv -f "$copy.tmp" "$copy"
  done
}
if [ -n "${SLM_PULUMI_PROJECT:-}" ]; then
  project="$SLM_PULUMI_PROJECT"
else
  shadow_project
  project="$SHADOW"
fi

# --- the environment ------------------------------------------------------------------------------
export PATH="$bin_dir:$ROOT/.venv/bin:$PATH"
export PULUMI_HOME="$STATE/home"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$STATE/backend}"
if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE=slm-deploy-local
fi
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true

cd "$project"
pulumi="$bin_dir/pulumi"
command="${1:-}"
if [ "$command" = up ] || [ "$command" = preview ] || [ "$command" = update ]; then
  stack=""
  previous=""
  for arg in "$@"; do
    case "$previous" in -s|--stack) stack="$arg" ;; esac
    case "$arg" in --stack=*) stack="${arg#--stack=}" ;; esac
    previous="$arg"
  done
  if [ -n "$stack" ]; then
    "$pulumi" stack select --create "$stack" --non-interactive >/dev/null
  fi
fi
exec "$pulumi" "$@"
