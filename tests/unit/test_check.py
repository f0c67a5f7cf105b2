"""`slm-deploy check`: the program offline, then the real pack through the analyzer protocol."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import app
from tests.conftest import REFERENCE_STACKS, ROOT

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
    # Bound by name, declared the same; the canary example stack is bound to the staging level.
    level = "staging" if stack == "canary" else stack
    assert report["level"] == report["environment"] == level
    assert report["binding"] == f"bound by name in {level}.json"
    if stack == "prod":
        assert report["summary"]["advisoryViolations"] == 0


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
    assert [(r["policyName"], r["resourceName"]) for r in waived] == [("read-only-root-filesystem", "chat-deployment")]
    assert waived[0]["waiver"]["reason"].startswith("the engine build under test")
    for output_format in ("text", "markdown", "sarif", "junit"):
        code, out, _ = check(stack_dir, "--stack", "opt-out", "--format", output_format)
        assert code == 0
        if output_format == "markdown":  # escaped for pasting: "@" carries a zero-width space
            out = html.unescape(out).replace("\u200b", "").replace("\\", "")
        words = " ".join(out.replace("│", " ").split())
        assert "waived" in words and "ml-platform@example.com" in words, output_format
        if output_format != "text":
            assert "the engine build under test writes to /opt at start-up" in words, output_format


def test_an_expired_waiver_is_a_violation(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2026-11-29")
    write_stack(stack_dir, WAIVER.format(expires="2026-11-01"))
    code, out, _ = check(stack_dir, "--stack", "opt-out", "--format", "json")
    assert code == 1
    violation = next(r for r in json.loads(out)["results"] if r["policyName"] == "read-only-root-filesystem")
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


# --------------------------------------------------------------------------- the level is bound, not chosen


def weakened_prod(directory: Path, environment: str = "dev", name: str = "prod") -> Path:
    """A copy of the reference prod stack whose file declares a weaker environment."""
    text = (ROOT / "stacks" / "Pulumi.prod.yaml").read_text()
    assert "  slm-deploy:environment: prod\n" in text
    (directory / "stacks" / f"Pulumi.{name}.yaml").write_text(
        text.replace("  slm-deploy:environment: prod\n", f"  slm-deploy:environment: {environment}\n")
    )
    return directory


def _binding_violations(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r
        for r in report["results"]
        if r["policyName"] == "environment-binding"
        and r["status"] == "violation"
        and r["enforcementLevel"] == "mandatory"
    ]


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_a_prod_stack_declaring_a_weaker_environment_is_refused(stack_dir: Path, environment: str) -> None:
    weakened_prod(stack_dir, environment)
    code, out, _ = check(stack_dir, "--stack", "prod")
    assert code == 1
    assert "environment-binding" in out and f"declares slm-deploy:environment '{environment}'" in " ".join(
        out.replace("│", " ").split()
    )
    code, out, _ = check(stack_dir, "--stack", "prod", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["level"] == "prod" and report["environment"] == environment
    assert report["configSource"].endswith("prod.json")  # prod's levels, not the declared environment's
    (violation,) = _binding_violations(report)
    assert violation["stack"] == "prod" and violation["resourceName"] is None


def test_an_unbound_stack_name_is_judged_at_prod(stack_dir: Path) -> None:
    """A new stack file no level file lists (here a copy of dev) gets prod's levels, whatever it declares."""
    shutil.copy(ROOT / "stacks" / "Pulumi.dev.yaml", stack_dir / "stacks" / "Pulumi.sandbox.yaml")
    code, out, _ = check(stack_dir, "--stack", "sandbox", "--format", "json")
    report = json.loads(out)
    assert code == 1
    assert report["level"] == "prod" and report["binding"].startswith("no level file binds this stack")
    assert _binding_violations(report)
    assert report["summary"]["mandatoryViolations"] > 1  # prod's mandatory levels apply to the rest too


def _weak_pack(directory: Path) -> Path:
    """A copy of the pack whose prod level file is advisory (the binding stays mandatory)."""
    pack = directory / "policies"
    shutil.copytree(ROOT / "policies", pack, ignore=shutil.ignore_patterns("__pycache__"))
    config = json.loads((pack / "config" / "prod.json").read_text())
    config["all"] = "advisory"
    for name, entry in list(config.items()):
        if isinstance(entry, dict) and name != "environment-binding":
            entry["enforcementLevel"] = "advisory"
        elif name != "all" and entry == "mandatory":
            config[name] = "advisory"
    (pack / "config" / "prod.json").write_text(json.dumps(config))
    return pack


def test_a_policies_folder_under_root_does_not_judge(stack_dir: Path) -> None:
    _weak_pack(stack_dir)
    write_stack(stack_dir)
    code, out, _ = check(stack_dir, "--stack", "opt-out", "--format", "json")
    assert code == 1, "the installed pack judges, not the one beside the stack files"
    assert not json.loads(out)["configSource"].startswith(str(stack_dir))


def test_another_pack_only_deliberately_and_visibly(stack_dir: Path) -> None:
    """``--policy-pack DIR`` is the one override: said on stderr and in the report (its own process,
    because loading a second pack replaces the ``policies`` modules)."""
    pack = _weak_pack(stack_dir)
    write_stack(stack_dir)
    command = [sys.executable, "-m", "infra.cli", "check", "--stack", "opt-out", "--root", str(stack_dir)]
    done = subprocess.run(
        [*command, "--policy-pack", str(pack), "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"judging with the policy pack in {pack.resolve()}, not the installed one" in done.stderr
    assert json.loads(done.stdout)["configSource"] == str(pack.resolve() / "config" / "prod.json")


# --------------------------------------------------------------------------- several stacks in one run


def test_several_stacks_in_one_run_merge_their_reports(stack_dir: Path, tmp_path: Path) -> None:
    shutil.copy(ROOT / "stacks" / "Pulumi.dev.yaml", stack_dir / "stacks" / "Pulumi.dev.yaml")
    write_stack(stack_dir)  # opt-out: a mandatory violation at prod (unbound name)
    args = ["--stack", "dev", "--stack", "opt-out", "--stack", "dev"]
    code, out, _ = check(stack_dir, *args, "--format", "json")
    assert code == 1, "the worst stack decides"
    report = json.loads(out)
    assert [(s["stack"], s["level"]) for s in report["stacks"]] == [("dev", "dev"), ("opt-out", "prod")]
    assert {r["stack"] for r in report["results"]} == {"dev", "opt-out"}
    assert (
        report["summary"]["mandatoryViolations"]
        == sum(s["summary"]["mandatoryViolations"] for s in report["stacks"])
        >= 1
    )
    assert not report["summary"]["ok"]
    code, out, _ = check(stack_dir, *args, "--format", "sarif", "--junit", str(tmp_path / "r.xml"))
    assert code == 1
    (run,) = json.loads(out)["runs"]
    uris = {
        r["properties"]["stack"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in run["results"]
    }
    assert uris == {"dev": "stacks/Pulumi.dev.yaml", "opt-out": "stacks/Pulumi.opt-out.yaml"}
    suites = ET.parse(tmp_path / "r.xml").getroot().findall("testsuite")
    assert [s.find("properties/property[@name='stack']").get("value") for s in suites] == ["dev", "opt-out"]  # type: ignore[union-attr]
    code, out, _ = check(stack_dir, *args, "--format", "markdown")
    assert "| Stack | Status | Level | Rule | Resource | Message |" in out and "failed for 2 stacks" in out
    assert "| `opt-out` | `prod` | `prod` |" in out and "| `dev` | `dev` | `dev` |" in out
    code, out, _ = check(stack_dir, *args)
    assert "total (2 stacks)" in out


def test_all_stacks_and_bad_arguments(root: Path, stack_dir: Path) -> None:
    code, out, _ = check(root, "--all-stacks", "--format", "json")
    assert code == 0
    # Deployment order: by level, then by name (the local stack is bound to dev; canary, nap, quotas to staging).
    assert [s["stack"] for s in json.loads(out)["stacks"]] == [
        "dev",
        "local",
        "canary",
        "nap",
        "quotas",
        "staging",
        "prod",
    ]
    for args, message in (
        ([], "Give --stack NAME"),
        (["--all-stacks", "--stack", "dev"], "not both"),
    ):
        code, _, err = check(root, *args)
        assert code == 2 and message in err and err.count("\n") == 1
    code, _, err = check(stack_dir, "--all-stacks")
    assert code == 2 and "no stack files" in err
    write_stack(stack_dir)
    code, _, err = check(stack_dir, "--stack", "opt-out", "--stack", "missing")
    assert code == 2 and "Pulumi.missing.yaml" in err


def test_the_binding_cannot_be_waived(stack_dir: Path) -> None:
    path = weakened_prod(stack_dir) / "stacks" / "Pulumi.prod.yaml"
    path.write_text(
        path.read_text()
        + "  slm-deploy:waivers:\n"
        + "    - {policy: environment-binding, resource: prod, reason: r, owner: o, expires: '2099-01-01'}\n"
        + "    - {policy: SLM-GOV-003, resource: prod, reason: r, owner: o, expires: '2099-01-01'}\n"
    )
    code, out, _ = check(stack_dir, "--stack", "prod", "--format", "json")
    report = json.loads(out)
    assert code == 1 and _binding_violations(report) and not report["summary"]["waived"]
