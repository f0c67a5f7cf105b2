"""checkov (offline) on our renders: the prod stack fails no check; waivers become checkov skips."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from tests.conftest import ROOT
from tests.helpers import unavailable
from tests.unit.test_check import WAIVER, write_stack


def checkov_binary() -> str | None:
    for candidate in (os.environ.get("SLM_DEPLOY_CHECKOV"), str(ROOT / ".venv-checkov" / "bin" / "checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("checkov")


CHECKOV = checkov_binary()
if CHECKOV is None:
    unavailable("checkov is not installed (scripts/run.sh test installs it into .venv-checkov)", module=True)


def scan(directory: Path) -> dict[str, Any]:
    assert CHECKOV, "CI must have checkov: scripts/run.sh test installs it into .venv-checkov"
    completed = subprocess.run(
        [CHECKOV, "-d", str(directory), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def render(root: Path, stack: str, out: Path) -> None:
    result = CliRunner().invoke(app, ["render", "--stack", stack, "--root", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output


def check_ids(report: dict[str, Any], kind: str) -> set[str]:
    return {c["check_id"] for c in report.get("results", {}).get(kind, [])}


def test_prod_render_fails_no_checkov_check(tmp_path: Path) -> None:
    render(ROOT, "prod", tmp_path / "prod")
    report = scan(tmp_path / "prod")
    assert report["summary"]["failed"] == 0, check_ids(report, "failed_checks")
    assert report["summary"]["passed"] > 100


def test_waivers_become_checkov_skips_and_nothing_else(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2026-11-29")
    write_stack(stack_dir)
    render(stack_dir, "opt-out", stack_dir / "unwaived")
    assert check_ids(scan(stack_dir / "unwaived"), "failed_checks") == {"CKV_K8S_22"}

    write_stack(stack_dir, WAIVER.format(expires="2027-01-31"))
    render(stack_dir, "opt-out", stack_dir / "waived")
    report = scan(stack_dir / "waived")
    assert report["summary"]["failed"] == 0
    assert check_ids(report, "skipped_checks") == {"CKV_K8S_22"}


def test_llamacpp_prod_render_fails_no_checkov_check(stack_dir: Path) -> None:
    """A prod stack serving a GGUF file with llama-server (image pinned by digest) passes checkov too."""
    from tests.unit.test_llamacpp_engine import stack

    config = {f"slm-deploy:{key}": value for key, value in stack("prod").items()}
    (stack_dir / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": config}))
    render(stack_dir, "prod", stack_dir / "render")
    report = scan(stack_dir / "render")
    assert report["summary"]["failed"] == 0, check_ids(report, "failed_checks")
    scanned = {c["resource"] for c in report["results"]["passed_checks"]}
    assert any(resource.startswith("Deployment.slm-tiny.") for resource in scanned)  # the server was scanned
