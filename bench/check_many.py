"""`slm-deploy check` for several stacks: one run (`--stack dev --stack staging --stack prod`) against one
process per stack.

Run: .venv/bin/python bench/check_many.py [--repeat 3] [--stack dev --stack staging --stack prod]
Each round times the separate runs back to back (their sum) and the single run, interleaved so both see
the same machine load; the best round of each is printed as JSON with the ratio (separate / one run).
One run saves the interpreter start, the SDK imports and the pack's load for every stack after the first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from check_vs_checkov import wall

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stack", action="append", dest="stacks", help="repeatable; default: dev, staging, prod")
    options = parser.parse_args()
    stacks = options.stacks or list(STACKS)
    check = [sys.executable, "-m", "infra.cli", "check", "--format", "json"]
    one_run = [*check, *(arg for stack in stacks for arg in ("--stack", stack))]
    separate: list[dict[str, float]] = []
    together: list[float] = []
    wall([*check, "--stack", stacks[0]])  # warm the file cache and the bytecode once
    for _ in range(options.repeat):
        separate.append({stack: wall([*check, "--stack", stack]) for stack in stacks})
        together.append(wall(one_run))
    best = min(separate, key=lambda times: sum(times.values()))
    separate_s, one_s = sum(best.values()), min(together)
    print(
        json.dumps(
            {
                "stacks": stacks,
                "repeat": options.repeat,
                "separate_runs_s": {stack: round(seconds, 3) for stack, seconds in best.items()},
                "separate_total_s": round(separate_s, 3),
                "one_run_s": round(one_s, 3),
                "ratio": round(separate_s / one_s, 2),
                "saved_s": round(separate_s - one_s, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
