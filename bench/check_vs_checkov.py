"""`slm-deploy check --stack prod` (program + policy pack) against a checkov scan of the same render.

Run: .venv/bin/python bench/check_vs_checkov.py [--repeat 5]
Both are measured as fresh processes, side by side, in one run (best of N wall times), and the
result is printed as JSON with the ratio. checkov comes from .venv-checkov (scripts/run.sh test
installs it) or $SLM_DEPLOY_CHECKOV.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 5.0


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed: {completed.stderr.decode()}")
    return elapsed


def checkov() -> str:
    for candidate in (os.environ.get("SLM_DEPLOY_CHECKOV"), str(ROOT / ".venv-checkov" / "bin" / "checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("checkov")
    if not found:
        raise SystemExit("checkov not found: run `bash scripts/run.sh test` once, or set SLM_DEPLOY_CHECKOV")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stack", default="prod")
    options = parser.parse_args()
    slm_deploy = [sys.executable, "-m", "infra.cli"]
    with tempfile.TemporaryDirectory() as directory:
        render = Path(directory) / "render"
        subprocess.run(
            [*slm_deploy, "render", "--stack", options.stack, "--out", str(render)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        check_command = [*slm_deploy, "check", "--stack", options.stack, "--format", "json"]
        scan_command = [checkov(), "-d", str(render), "--framework", "kubernetes", "--skip-download", "-o", "json"]
        checks, scans = [], []
        for _ in range(options.repeat):
            # Interleaved, so both see the same machine load.
            checks.append(wall(check_command))
            scans.append(wall(scan_command))
    check_s, scan_s = min(checks), min(scans)
    print(
        json.dumps(
            {
                "stack": options.stack,
                "slm_deploy_check_s": round(check_s, 3),
                "checkov_scan_s": round(scan_s, 3),
                "ratio": round(scan_s / check_s, 2),
                "target_ratio": TARGET_RATIO,
                "meets_target": scan_s / check_s >= TARGET_RATIO,
                "python_startup_s": round(min(wall([sys.executable, "-c", "pass"]) for _ in range(3)), 3),
                "import_pulumi_kubernetes_s": round(
                    min(wall([sys.executable, "-c", "import pulumi_kubernetes.apps.v1"]) for _ in range(3)), 3
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
