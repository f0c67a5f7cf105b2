"""Pull-request helpers for the pipelines: which stacks a change touches, and the one PR comment.

A stack is *touched* when its own stack file (``stacks/Pulumi.<stack>.yaml``) changed, or when
anything that can change what any stack deploys changed: every path except documentation
(``docs/``, ``*.md``), tests (``tests/``), benchmarks (``bench/``) and the CI definitions
themselves (``templates/ci/``, ``.github/``, ``.azure-pipelines/``). Code, policies, templates,
servers, ``pyproject.toml`` and ``Pulumi.yaml`` touch every stack. A stack file deleted by the
change touches nothing (there is nothing left to render or deploy).

Run as ``python -m infra.gitops.pr touched --base REF`` (prints a JSON list of stack names) and
``python -m infra.gitops.pr comment --out FILE [--from FOLDER] [PART.md…]`` (joins per-stack diffs into one comment,
within the comment limit, headed by the marker the pipelines use to find and update it). The parts
are ``slm-deploy diff --format markdown`` reports, whose every user-provided string is escaped
(:func:`infra.policy.reports.escape_markdown`); a part cut to fit ends at a line boundary with its
``<details>`` blocks closed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from infra.policy.reports import truncate_markdown

#: The first line of the PR comment: the pipelines find the comment to update by it.
COMMENT_MARKER = "<!-- slm-deploy:pr-summary -->"
COMMENT_LIMIT = 65_000
_IGNORED_PREFIXES = ("docs/", "tests/", "bench/", "templates/ci/", ".github/", ".azure-pipelines/")
_STACK_FILE = re.compile(r"^stacks/Pulumi\.([A-Za-z0-9_.-]+)\.ya?ml$")


def stack_names(root: Path) -> list[str]:
    """Stacks of the repository: ``stacks/Pulumi.<name>.yaml``."""
    names = []
    for path in sorted((root / "stacks").glob("Pulumi.*.yaml")):
        match = _STACK_FILE.match(f"stacks/{path.name}")
        if match:
            names.append(match.group(1))
    return names


def touched_stacks(changed: Iterable[str], stacks: Sequence[str]) -> list[str]:
    """The stacks (of ``stacks``, in that order) that the changed paths touch."""
    touched: set[str] = set()
    everything = False
    for raw in changed:
        path = raw.strip().replace("\\", "/")
        if not path:
            continue
        match = _STACK_FILE.match(path)
        if match:
            touched.add(match.group(1))
        elif path.endswith(".md") or path.startswith(_IGNORED_PREFIXES):
            continue
        else:
            everything = True
    return [s for s in stacks if everything or s in touched]


def changed_files(root: Path, base: str) -> list[str]:
    """Paths changed between the merge base of ``base`` and HEAD (what a PR changes)."""
    done = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git diff against {base}: {(done.stderr.strip().splitlines() or ['failed'])[-1]}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def combine_comments(parts: Sequence[str], limit: int = COMMENT_LIMIT, marker: str = COMMENT_MARKER) -> str:
    """One comment: the marker, then each stack's Markdown; each part gets an equal share of ``limit``."""
    head = f"{marker}\n# slm-deploy: offline diff and policy check\n\n"
    if not parts:
        return head + "No stack is touched by this change.\n"
    note = "\n> **Truncated** to fit the comment: see the job's artifacts for the full report.\n"
    share = (limit - len(head)) // len(parts) - 2
    # Cut at line boundaries and close open <details> blocks: one part can never swallow the next.
    pieces = [truncate_markdown(part.strip(), share, note).strip() for part in parts]
    return head + "\n\n".join(pieces) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.gitops.pr")
    commands = parser.add_subparsers(dest="command", required=True)
    touched = commands.add_parser("touched", help="JSON list of the stacks a change touches")
    touched.add_argument("--base", required=True, help="git ref the change is compared with (origin/main)")
    touched.add_argument("--root", type=Path, default=Path("."))
    comment = commands.add_parser("comment", help="join per-stack Markdown into the PR comment")
    comment.add_argument("--out", type=Path, required=True)
    comment.add_argument(
        "--from", dest="folder", type=Path, help="every *.md in this folder, by name (none: no stack touched)"
    )
    comment.add_argument("parts", nargs="*", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "touched":
            print(json.dumps(touched_stacks(changed_files(args.root, args.base), stack_names(args.root))))
        else:
            files = [*args.parts, *(sorted(args.folder.glob("*.md")) if args.folder else [])]
            parts = [p.read_text(encoding="utf-8") for p in files]
            args.out.write_text(combine_comments(parts), encoding="utf-8")
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
