"""`slm-deploy check`: the program offline, then the real pack through the analyzer protocol."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from tests.conftest import REFERENCE_STACKS

PROD_MODEL = """
    - name: chat
      engine: vllm
      modelId: Qwen/Qwen3-4B
      replicas: 2
      gpu: {count: 1}
      image:
        repository: vllm/vllm-openai
        tag: v0.14.0
        digest: sha256:1d6866b87630d94f5e0cdae55ab5abb4ce0b03fcb84d9d10612f9d518d19d4fd
      cache: {accessMode: ReadWriteMany, storageClass: azurefile-csi-premium}
      hardening: {readOnlyRootFilesystem: false}
"""


def write_stack(directory: Path, waivers: str = "") -> None:
    text = "config:\n  slm-deploy:environment: prod\n  slm-deploy:models:" + PROD_MODEL
    if waivers:
        text += "  slm-deploy:waivers:\n" + waivers
    (directory / "stacks" / "Pulumi.opt-out.yaml").write_text(text)


WAIVER = """    - policy: read-only-root-filesystem
      resource: chat-deployment
      reason: the engine build under test writes to /opt at start-up
      owner: ml-platform@example.com
      expires: "{expires}"
"""


def check(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["check", "--root", str(root), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_reference_stacks_pass_their_environment(stack: str, root: Path) -> None:
    code, out, _ = check(root, "--stack", stack, "--format", "json")
    report = json.loads(out)
    assert code == 0, [r for r in report["results"] if r["status"] == "violation"]
    assert report["summary"]["mandatoryViolations"] == 0


def test_an_opt_out_in_prod_is_a_mandatory_violation(stack_dir: Path) -> None:
    write_stack(stack_dir)
    code, out, _ = check(stack_dir, "--stack", "opt-out")
    assert code == 1
    assert "read-only-root-filesystem" in out
    assert "chat-deployment" in out


def test_an_active_waiver_passes_and_stays_visible(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2026-11-29")
    write_stack(stack_dir, WAIVER.format(expires="2027-01-31"))
    code, out, _ = check(stack_dir, "--stack", "opt-out", "--format", "json")
    assert code == 0
    waived = [r for r in json.loads(out)["results"] if r["status"] == "waived"]
    assert [(r["policy_name"], r["resource_name"]) for r in waived] == [
        ("read-only-root-filesystem", "chat-deployment")
    ]
    assert waived[0]["waiver"]["reason"].startswith("the engine build under test")
    for output_format in ("text", "markdown", "sarif", "junit"):
        code, out, _ = check(stack_dir, "--stack", "opt-out", "--format", output_format)
        assert code == 0
        words = " ".join(out.replace("│", " ").split())
        assert "waived" in words and "ml-platform@example.com" in words, output_format
        if output_format != "text":
            assert "the engine build under test writes to /opt at start-up" in words, output_format


def test_an_expired_waiver_is_a_violation(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2026-11-29")
    write_stack(stack_dir, WAIVER.format(expires="2026-11-01"))
    code, out, _ = check(stack_dir, "--stack", "opt-out", "--format", "json")
    assert code == 1
    violation = next(r for r in json.loads(out)["results"] if r["policy_name"] == "read-only-root-filesystem")
    assert violation["status"] == "violation"
    assert "expired on 2026-11-01" in violation["message"]


def test_a_waiver_without_an_owner_is_a_config_error(stack_dir: Path) -> None:
    write_stack(stack_dir, WAIVER.format(expires="2027-01-31").replace("      owner: ml-platform@example.com\n", ""))
    code, _, err = check(stack_dir, "--stack", "opt-out")
    assert code == 2
    assert "stacks/Pulumi.opt-out.yaml: slm-deploy:waivers[0].owner: required key is missing" in err


def test_reports_written_to_files(tmp_path: Path, root: Path) -> None:
    for output_format, name in (("sarif", "r.sarif"), ("junit", "r.xml"), ("markdown", "r.md"), ("json", "r.json")):
        code, out, _ = check(root, "--stack", "prod", "--format", output_format, "--output", str(tmp_path / name))
        assert code == 0
        assert "0 mandatory" in out
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["tool"]["driver"]["rules"]
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.iter("testcase")
    assert len((tmp_path / "r.md").read_text()) < 65_000


def test_render_turns_waivers_into_checkov_skips(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2026-11-29")
    write_stack(stack_dir, WAIVER.format(expires="2027-01-31"))
    out = stack_dir / "render"
    result = CliRunner().invoke(app, ["render", "--stack", "opt-out", "--root", str(stack_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "slm-chat" / "deployment.apps--chat.yaml").read_text()
    assert "checkov.io/skip1: CKV_K8S_22=the engine build under test writes to /opt at start-up" in text
