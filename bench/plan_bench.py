"""Wall time and peak RSS of `slm-deploy plan` for generated stacks of 1, 10, 50 and 200 models.

Run: .venv/bin/python bench/plan_bench.py [--sizes 1,10,50,200] [--repeat 3]
Prints one JSON document. Not part of the test suite. Each run is a fresh process, so the figures
include interpreter start-up and imports, as a user sees them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLM_DEPLOY = [sys.executable, "-m", "infra.cli"]


def generated_stack(models: int) -> str:
    lines = ["config:", "  slm-deploy:environment: dev", "  slm-deploy:models:"]
    for index in range(models):
        lines += [
            f"    - name: model-{index}",
            "      engine: vllm",
            f"      modelId: org/model-{index}",
            "      gpu: {count: 1}",
        ]
    return "\n".join(lines) + "\n"


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return wall, usage.ru_maxrss / 1024


def best_of(command: list[str], cwd: Path, repeat: int) -> dict[str, float]:
    runs = [timed(command, cwd) for _ in range(repeat)]
    return {"wall_s": round(min(w for w, _ in runs), 3), "peak_rss_mib": round(max(r for _, r in runs), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10,50,200")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    results: dict[str, object] = {
        "prod_reference": best_of([*SLM_DEPLOY, "plan", "--stack", "prod", "--format", "json"], ROOT, options.repeat)
    }
    generated = {}
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        (project / "stacks").mkdir()
        for size in (int(s) for s in options.sizes.split(",")):
            (project / "stacks" / f"Pulumi.gen{size}.yaml").write_text(generated_stack(size))
            command = [*SLM_DEPLOY, "plan", "--stack", f"gen{size}", "--format", "json"]
            generated[str(size)] = best_of(command, project, options.repeat)
    results["generated"] = generated
    results["python"] = sys.version.split()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
