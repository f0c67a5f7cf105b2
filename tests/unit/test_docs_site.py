"""The documentation site builds with `mkdocs build --strict` (every internal link and anchor resolves) and
carries the generated pages; the README's quick start is included from the README, not copied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT


def _nav_pages(entries: list[object]) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages += _nav_pages(value) if isinstance(value, list) else [str(value)]
    return pages


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    quick_start = (tmp_path / "site" / "getting-started" / "index.html").read_text(encoding="utf-8")
    assert "Pulumi.lab.yaml" in quick_start  # included from the README between its markers
    assert "--8&lt;--" not in quick_start
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    assert "modelId" in reference


def test_every_page_is_in_the_nav_and_the_generated_pages_too() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True
    assert set(config["validation"].values()) == {"warn"}  # warnings fail a strict build
    nav = _nav_pages(config["nav"])
    pages = sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    assert sorted(set(nav)) == sorted(set(pages) | set(nav)), set(pages) - set(nav)
    assert {"reference.md", "policies.md", "getting-started.md", "cost.md", "onnx-server.md"} <= set(nav)
    assert "local-cluster.md" in nav


def test_the_generated_reference_reads_as_types_not_python() -> None:
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    for leftover in ("ForwardRef(", "object or object", "typing."):
        assert leftover not in text
    model_id = next(line for line in text.splitlines() if line.startswith("| `modelId` |"))
    assert "from `catalog`" in model_id
    assert "| `cluster` | object (`mode: existing`) or object (`mode: aks`) |" in text
