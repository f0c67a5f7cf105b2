"""The README is short, starts with the set-up commands and a quick start, and every offline command it shows
runs as written (in a copy of this checkout, in the order shown)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout import copy_checkout
from tests.conftest import ROOT

README = ROOT / "README.md"

#: Commands the README shows that this test does not run, each with the reason. Everything else runs.
NOT_RUN_HERE = {
    "bash scripts/run.sh test": "runs the whole test suite, this test included",
    # These need the local cluster (a control plane built from source, tests/cluster starts it) and the Pulumi CLI.
    'eval "$(bash scripts/local-cluster.sh start | tail -n 1)"': "needs a cluster",
    "bash scripts/pulumi.sh up --stack local --yes --policy-pack policies "
    "--policy-pack-config policies/config/dev.json": "needs a cluster",
    "bash scripts/pulumi.sh preview --stack local --expect-no-changes": "needs a cluster",
    "bash scripts/pulumi.sh destroy --stack local --yes": "needs a cluster",
    "bash scripts/local-cluster.sh stop": "needs a cluster",
    ".venv/bin/python -m pip install -e '.[docs]'": "installs into the environment running the tests",
    ".venv/bin/mkdocs serve": "a server that runs until stopped (test_docs_site builds the same site)",
}


def _without_comment(line: str) -> str:
    """The command of a line, without a trailing `#` comment (comments here always follow two spaces)."""
    return re.split(r"\s{2,}#\s", line, maxsplit=1)[0].strip()


def shown_commands(markdown: str) -> list[str]:
    """Each command of the ```bash blocks, in order; a heredoc stays one command with its body."""
    commands: list[str] = []
    for block in re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.S | re.M):
        lines = block.splitlines()
        while lines:
            line = lines.pop(0)
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            heredoc = re.search(r"<<'?(\w+)'?", line)
            if heredoc:
                body = [line]
                while lines:
                    body.append(lines.pop(0))
                    if body[-1] == heredoc.group(1):
                        break
                commands.append("\n".join(body))
            else:
                commands.append(line)
    return commands


def test_the_readme_is_short_and_starts_with_set_up_then_quick_start() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, len(lines)
    filled = [line for line in lines if line.strip()]
    assert filled[1] == "```bash"
    assert filled[2].startswith("bash scripts/run.sh plan")
    assert filled[3].startswith("bash scripts/run.sh test")
    assert "## Quick start" in lines[:60]
    assert "bash scripts/run.sh test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_excluded_command_is_still_shown() -> None:
    # The list above must not hide commands that were removed or reworded: each entry is a command shown now.
    shown = {_without_comment(command) for command in shown_commands(README.read_text(encoding="utf-8"))}
    assert set(NOT_RUN_HERE) <= shown, set(NOT_RUN_HERE) - shown


#: Pages whose bash blocks are usage synopses, not commands to paste (choices written `a|b` on purpose).
SYNOPSIS_PAGES = {"onnx-server.md"}


@pytest.mark.parametrize(
    "page",
    [README, *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in SYNOPSIS_PAGES)],
    ids=lambda p: p.name,
)
def test_no_command_lists_choices_with_a_pipe(page: Path) -> None:
    # `--format junit|json|markdown` pasted into a shell pipes into a command named `json`.
    for command in shown_commands(page.read_text(encoding="utf-8")):
        assert not re.search(r"--[a-z-]+[ =][a-z]+\|[a-z]", _without_comment(command)), command


def _checkout_copy(destination: Path) -> Path:
    """What a fresh clone holds, with this environment's .venv, committed in its own git (diff needs a ref)."""
    copy_checkout(destination)
    (destination / ".venv").symlink_to(Path(sys.prefix))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*git, *args], cwd=destination, check=True, capture_output=True)
    return destination


def _plan_stamp_is_current() -> bool:
    """Whether scripts/run.sh would install nothing for `plan` (its stamp holds the hash of pyproject.toml)."""
    import hashlib

    stamp = Path(sys.prefix) / ".slm-deploy-plan"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return stamp.is_file() and stamp.read_text().strip() == wanted


def test_every_offline_command_of_the_readme_runs_as_written(tmp_path: Path) -> None:
    # The copy shares this environment: `run.sh plan` there must find it set up, or it would install the copy into it.
    assert _plan_stamp_is_current(), "set up first: bash scripts/run.sh plan (pyproject.toml changed since)"
    checkout = _checkout_copy(tmp_path / "checkout")
    # The copy's own code and policy pack are imported (this environment's editable install points elsewhere).
    env = {**os.environ, "PYTHONPATH": str(checkout), "NO_COLOR": "1"}
    ran = []
    for command in shown_commands(README.read_text(encoding="utf-8")):
        if _without_comment(command) in NOT_RUN_HERE:
            continue
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        ran.append((command, done))
    by_command = {_without_comment(command): done for command, done in ran}
    # The quick start's story: the new name is judged at prod until it is bound, then it is not.
    first, *_ = (done for command, done in ran if command.startswith(".venv/bin/slm-deploy validate --stack lab"))
    assert "judged at prod" in first.stderr
    assert "judged at prod" not in by_command[".venv/bin/slm-deploy validate --stack lab"].stderr
    assert (checkout / "build" / "lab").is_dir()
    assert len(ran) >= 15
