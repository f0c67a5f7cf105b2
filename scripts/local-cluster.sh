#!/usr/bin/env bash
# A local Kubernetes control plane on 127.0.0.1 for trying stacks without a cloud account (docs/local-cluster.md).
#
#   bash scripts/local-cluster.sh start    build the tools when needed (scripts/cluster-tools.sh cluster), start
#                                          etcd, kube-apiserver, controller manager, scheduler and kwok (a CPU and
#                                          a GPU node, fake: no container runs), install the CRDs slm-deploy
#                                          renders and a default StorageClass; the last line printed is
#                                          `export KUBECONFIG=<path>`: eval it
#   bash scripts/local-cluster.sh stop     stop exactly the processes start started
#   bash scripts/local-cluster.sh status   each component running or not; exit 0 all, 1 some, 3 none
#
# State (certificates, kubeconfig, etcd data, logs): ${SLM_LOCAL_CLUSTER_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/slm-deploy/local-cluster}
# A new start begins from an empty state folder. SLM_CLUSTER_BIN_DIR names a folder that already holds the tools.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${SLM_LOCAL_CLUSTER_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/slm-deploy/local-cluster}"

command="${1:-}"
case "$command" in
  start|stop|status) ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

# The control plane's code is the project's (infra/localcluster): the project's virtualenv runs it.
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  bash "$ROOT/scripts/run.sh" plan >/dev/null
fi

if [ -n "${SLM_CLUSTER_BIN_DIR:-}" ]; then
  bin_dir="$SLM_CLUSTER_BIN_DIR"
elif [ "$command" = start ]; then
  bin_dir="$(bash "$ROOT/scripts/cluster-tools.sh" cluster | tail -n 1)"
else
  bin_dir="$(bash "$ROOT/scripts/cluster-tools.sh" --print-bin-dir)"
fi

cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m infra.localcluster "$command" --state "$STATE" --bin-dir "$bin_dir"
