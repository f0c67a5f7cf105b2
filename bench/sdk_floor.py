"""The least wall time the SDKs alone cost a plan or a check of a stack, beside the issues' targets.

Run: .venv/bin/python bench/sdk_floor.py [--stack prod] [--repeat 5]
It plans the stack (and runs the policy pack) in this process only to list the SDK modules those
steps load (``pulumi``, ``pulumi_kubernetes``, ``pulumi_azure_native``, ``pulumi_policy`` and what
they import). Then, as fresh processes and best of N, it times the interpreter alone, and importing
exactly those modules with the cyclic collector paused, as ``slm-deploy`` runs. No program and no
policy runs in that import: whatever program declares these resources through the SDKs' typed
classes, and whatever drives the real pack, pays at least this much. The checkov scan of the same
render is timed too, for the check target (at least 5x faster than the scan), and so is
``slm-deploy check --stack <stack>`` itself, as a ratio to the check's import floor (issue 24's target: at
most 2x). ``--no-checkov`` skips the scan.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from check_vs_checkov import checkov, wall

ROOT = Path(__file__).resolve().parent.parent
SDK_PACKAGES = ("pulumi", "pulumi_kubernetes", "pulumi_azure_native", "pulumi_policy")
PLAN_TARGET_S = 2.5
CHECK_TARGET_RATIO = 5.0
#: ``check --stack prod`` may take at most this many times the SDK import floor (issue 24).
CHECK_OVER_FLOOR_TARGET = 2.0
_IMPORT_ONLY = """
import gc, importlib, json, sys
gc.disable()
for name in json.load(open(sys.argv[1])):
    importlib.import_module(name)
gc.freeze()
"""


def loaded_sdk_modules(stack: str, with_policy: bool) -> list[str]:
    """The SDK modules, in load order, that planning ``stack`` (and checking it) loads."""
    sys.path.insert(0, str(ROOT))
    from infra.plan.stack import plan_stack
    from infra.policy.analyzer import DEFAULT_PACK_DIR, run_policy_pack
    from infra.policy.pack_config import judge_stack

    plan = plan_stack(stack, ROOT)
    if with_policy:
        judge_stack(plan, DEFAULT_PACK_DIR, run_policy_pack)
    return [name for name in sys.modules if name.split(".")[0] in SDK_PACKAGES]


def import_floor(modules: list[str], repeat: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as listing:
        json.dump(modules, listing)
    try:
        return min(wall([sys.executable, "-c", _IMPORT_ONLY, listing.name]) for _ in range(repeat))
    finally:
        Path(listing.name).unlink()


def checkov_scan(stack: str, repeat: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        render = Path(directory) / "render"
        subprocess.run(
            [sys.executable, "-m", "infra.cli", "render", "--stack", stack, "--out", str(render)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        scan = [checkov(), "-d", str(render), "--framework", "kubernetes", "--skip-download", "-o", "json"]
        return min(wall(scan) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-checkov", action="store_true", help="skip timing checkov's scan")
    options = parser.parse_args()
    start = time.perf_counter()
    plan_modules = loaded_sdk_modules(options.stack, with_policy=False)
    check_modules = loaded_sdk_modules(options.stack, with_policy=True)
    listing_s = time.perf_counter() - start
    startup = min(wall([sys.executable, "-c", "pass"]) for _ in range(options.repeat))
    plan_floor = import_floor(plan_modules, options.repeat)
    check_floor = import_floor(check_modules, options.repeat)
    check_command = [sys.executable, "-m", "infra.cli", "check", "--stack", options.stack, "--format", "json"]
    check_s = min(wall(check_command) for _ in range(options.repeat))
    scan = 0.0 if options.no_checkov else checkov_scan(options.stack, options.repeat)
    check_target = scan / CHECK_TARGET_RATIO
    print(
        json.dumps(
            {
                "stack": options.stack,
                "python_startup_s": round(startup, 3),
                "plan": {
                    "sdk_modules": len(plan_modules),
                    "sdk_import_floor_s": round(plan_floor, 3),
                    "target_s": PLAN_TARGET_S,
                    "target_above_floor": plan_floor < PLAN_TARGET_S,
                },
                "check": {
                    "sdk_modules": len(check_modules),
                    "sdk_import_floor_s": round(check_floor, 3),
                    "check_s": round(check_s, 3),
                    "check_over_floor": round(check_s / check_floor, 2),
                    "check_over_floor_target": CHECK_OVER_FLOOR_TARGET,
                    "checkov_scan_s": round(scan, 3),
                    "target_s": round(check_target, 3),
                    "target_above_floor": check_floor < check_target,
                    "best_possible_ratio": round(scan / check_floor, 2) if scan else None,
                },
                "in_process_listing_s": round(listing_s, 3),
                "python": sys.version.split()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
