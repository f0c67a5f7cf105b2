"""Generated documentation is current: `slm-deploy docs` leaves nothing to change."""

from __future__ import annotations

from pathlib import Path

from infra.docs import generated_documents


def test_generated_documents_are_current(root: Path) -> None:
    stale = [str(path) for path, text in generated_documents(root).items() if path.read_text(encoding="utf-8") != text]
    assert stale == [], "run `slm-deploy docs` and commit the result"


def test_readme_starts_with_the_two_commands(root: Path) -> None:
    lines = [line for line in (root / "README.md").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[1] == "```bash"
    assert lines[2].startswith("bash scripts/run.sh plan")
    assert lines[3].startswith("bash scripts/run.sh test")
    assert "bash scripts/run.sh test" in (root / ".ci" / "run").read_text(encoding="utf-8")
