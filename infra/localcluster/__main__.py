"""``python -m infra.localcluster start|stop|status --state DIR --bin-dir DIR`` (run by scripts/local-cluster.sh).

``start`` prints, as its last line, ``export KUBECONFIG=<state>/kubeconfig``. Exit status: 0 done (for
``status``: every component runs), 1 a component failed or (``status``) some run and some do not,
3 (``status``) nothing runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from infra.localcluster.controlplane import CONTEXT, ClusterError, running, start, stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local-cluster", description=__doc__)
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--state", type=Path, required=True, help="folder of the cluster's state (outside the repo)")
    parser.add_argument("--bin-dir", type=Path, required=True, help="bin folder of scripts/cluster-tools.sh")
    args = parser.parse_args(argv)
    state: Path = args.state.resolve()
    bin_dir: Path = args.bin_dir.resolve()

    if args.command == "stop":
        stopped = stop(state, bin_dir)
        print(f"local-cluster: stopped {', '.join(stopped)}" if stopped else "local-cluster: nothing was running")
        return 0
    if args.command == "status":
        components = running(state)
        for name, alive in components.items():
            print(f"{name}: {'running' if alive else 'stopped'}")
        if components and all(components.values()):
            print(f"kubeconfig: {state / 'kubeconfig'} (context {CONTEXT})")
            return 0
        return 1 if any(components.values()) else 3
    try:
        cluster = start(state, bin_dir)
    except ClusterError as error:
        print(f"local-cluster: {error}", file=sys.stderr)
        return 1
    print(f"local-cluster: API server {cluster.server()}, nodes kwok-cpu-0 and kwok-gpu-0 (fake: no container runs)")
    print(f"export KUBECONFIG={shlex.quote(str(cluster.kubeconfig))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
