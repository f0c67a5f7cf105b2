"""AKS's support window as dated data: the stacks' versions inside it, and a warning (never an error) outside."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.catalog.kubernetes_versions import load_calendar, support_status
from infra.cli import app
from infra.config.kubernetes_versions import kubernetes_version_warnings
from infra.config.loader import load_stack_file, validate_stack_config
from infra.config.stack import DEFAULT_KUBERNETES, SUPPORTED_KUBERNETES, StackConfig
from tests.cli_output import stack_file_lines
from tests.conftest import REFERENCE_STACKS, REFERENCE_TODAY, ROOT

RELEASE_DAY = datetime.date.fromisoformat(REFERENCE_TODAY)


def test_the_calendar_names_its_source_and_when_it_was_read() -> None:
    calendar = load_calendar()
    assert calendar.source == "https://learn.microsoft.com/azure/aks/supported-kubernetes-versions"
    assert calendar.as_of <= calendar.read_on <= RELEASE_DAY
    # Every minor it lists has schemas to validate manifests against.
    assert set(calendar.minors()) <= set(SUPPORTED_KUBERNETES)
    assert calendar.minors() == sorted(calendar.minors(), key=lambda m: int(m.split(".")[1]))
    for minor in calendar.minors():
        row = calendar.versions[minor]
        assert row.ga < row.end_of_support <= (row.lts_end or row.end_of_support)


def test_the_default_and_the_reference_stacks_are_inside_the_window_at_release() -> None:
    assert support_status(DEFAULT_KUBERNETES, RELEASE_DAY).in_window
    assert StackConfig.model_fields["kubernetes_version"].default == DEFAULT_KUBERNETES
    for stack in REFERENCE_STACKS:
        config = load_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
        assert config.kubernetes_version == DEFAULT_KUBERNETES, stack
        assert support_status(config.kubernetes_version, RELEASE_DAY).in_window, stack
        cluster_version = getattr(config.cluster, "kubernetes_version", config.kubernetes_version)
        assert support_status(cluster_version, RELEASE_DAY).in_window, stack
        assert config.warnings() == [], stack


def test_the_default_has_months_of_support_left_at_release() -> None:
    end = load_calendar().versions[DEFAULT_KUBERNETES].end_of_support
    assert (end - RELEASE_DAY).days >= 90


@pytest.mark.parametrize(
    ("version", "day", "phase"),
    [
        ("1.34", "2026-11-30", "supported"),  # the last day of "Nov 2026"
        ("1.34", "2026-12-01", "lts-only"),
        ("1.31", "2026-11-29", "lts-only"),
        ("1.31.5", "2026-12-01", "ended"),  # a patch counts as its minor
        ("1.30", "2026-11-29", "ended"),
        ("1.37", "2026-09-30", "not-ga"),
        ("1.37", "2026-10-01", "supported"),
        ("1.25", "2026-11-29", "unlisted-older"),
    ],
)
def test_support_status(version: str, day: str, phase: str) -> None:
    assert support_status(version, datetime.date.fromisoformat(day)).phase == phase


def test_a_minor_newer_than_the_calendar_is_not_in_the_window() -> None:
    calendar = load_calendar()
    newest = calendar.minors()[-1]
    newer = f"1.{int(newest.split('.')[1]) + 1}"
    status = support_status(newer, RELEASE_DAY, calendar)
    assert status.phase == "unlisted-newer" and not status.in_window


def stack_text(version: str, cluster: str = "") -> str:
    return f"""config:
  slm-deploy:environment: dev
  slm-deploy:kubernetesVersion: "{version}"
{cluster}  slm-deploy:network:
    modelDownload: allow
    downloadCidrs: [203.0.113.0/24]
  slm-deploy:models:
    - name: chat
      engine: ollama
      modelId: qwen3:0.6b
"""


AKS_CLUSTER = """  slm-deploy:cluster:
    mode: aks
    name: aks-old
    resourceGroup: rg-old
    location: westeurope
    kubernetesVersion: "1.31.5"
"""


def test_a_version_out_of_support_is_a_warning_naming_the_key(stack_dir: Path) -> None:
    (stack_dir / "stacks" / "Pulumi.old.yaml").write_text(stack_text("1.31"))
    result = CliRunner().invoke(app, ["validate", "--stack", "old", "--root", str(stack_dir)])
    assert result.exit_code == 0, result.output
    assert "valid (1 model(s), environment dev)" in result.stdout
    lines = stack_file_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        f"warning: {stack_dir}/stacks/Pulumi.old.yaml: slm-deploy:kubernetesVersion: AKS standard support for "
        "Kubernetes 1.31 ended on 2025-11-01; only AKS long-term support (Premium tier, support plan "
        "AKSLongTermSupport) runs until 2026-11-30; move to a minor in support: 1.34 (until 2026-11-30), 1.35 "
        "(until 2027-03-31), 1.36 (until 2027-06-30), 1.37 (until 2027-10-31) (AKS release calendar as of "
        "2026-08-05, infra/catalog/kubernetes_versions.yaml)"
    )


def test_in_aks_mode_the_warning_names_the_cluster_version(stack_dir: Path) -> None:
    (stack_dir / "stacks" / "Pulumi.old.yaml").write_text(stack_text("1.31", AKS_CLUSTER))
    result = CliRunner().invoke(app, ["validate", "--stack", "old", "--root", str(stack_dir)])
    assert result.exit_code == 0, result.output
    (line,) = stack_file_lines(result.stderr)
    assert line.startswith(f"warning: {stack_dir}/stacks/Pulumi.old.yaml: slm-deploy:cluster.kubernetesVersion: ")
    assert "move to a minor in support (and kubernetesVersion with it): 1.34" in line


def test_a_version_not_yet_ga_is_a_warning(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2026-09-15")
    (stack_dir / "stacks" / "Pulumi.early.yaml").write_text(stack_text("1.37"))
    result = CliRunner().invoke(app, ["validate", "--stack", "early", "--root", str(stack_dir)])
    assert result.exit_code == 0, result.output
    (line,) = stack_file_lines(result.stderr)
    assert "slm-deploy:kubernetesVersion: Kubernetes 1.37 is not generally available on AKS before 2026-10-01" in (line)


def test_a_version_older_than_the_calendar_is_a_warning() -> None:
    model = {"name": "chat", "engine": "ollama", "modelId": "qwen3:0.6b"}
    config = validate_stack_config({"environment": "dev", "kubernetesVersion": "1.26", "models": [model]}, "t")
    (warning,) = kubernetes_version_warnings(config.kubernetes_version, config.cluster, RELEASE_DAY)
    assert warning.key_path == "slm-deploy:kubernetesVersion"
    assert warning.message.startswith("Kubernetes 1.26 is older than every minor of the AKS release calendar")


@pytest.mark.parametrize(
    ("version", "cluster", "where", "message"),
    [
        ("1.24", "", "slm-deploy:kubernetesVersion", "'1.24' is not a supported Kubernetes version (1.25 to 1.37)"),
        (
            "1.35",
            AKS_CLUSTER,
            "slm-deploy:cluster.kubernetesVersion",
            "AKS version 1.31.5 does not match the stack's kubernetesVersion 1.35",
        ),
    ],
)
def test_versions_without_schemas_or_out_of_step_stay_errors(
    version: str, cluster: str, where: str, message: str, stack_dir: Path
) -> None:
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(stack_text(version, cluster))
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(stack_dir)])
    assert result.exit_code == 2, result.output
    (line,) = stack_file_lines(result.stderr)
    assert line.startswith(f"error: {stack_dir}/stacks/Pulumi.bad.yaml: {where}: ") and message in line


def test_plan_and_check_print_the_warning_and_keep_their_exit_status(tmp_path: Path) -> None:
    # The dev reference stack (bound to the dev policy level by its name) on a minor out of support.
    (tmp_path / "stacks").mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    assert f'slm-deploy:kubernetesVersion: "{DEFAULT_KUBERNETES}"' in text
    old = text.replace(f'slm-deploy:kubernetesVersion: "{DEFAULT_KUBERNETES}"', 'slm-deploy:kubernetesVersion: "1.30"')
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(old)
    expected = "slm-deploy:kubernetesVersion: AKS standard support for Kubernetes 1.30 ended on 2025-08-22"
    for command in (["plan"], ["check"], ["render", "--out", str(tmp_path / "out")]):
        result = CliRunner().invoke(app, [*command, "--stack", "dev", "--root", str(tmp_path)])
        # The same exit status as the reference stack (0: dev's policies are advisory, the render is valid).
        assert result.exit_code == 0, (command, result.output)
        warnings = [line for line in stack_file_lines(result.stderr) if line.startswith("warning: ")]
        assert len(warnings) == 1, (command, result.stderr)
        assert expected in warnings[0]
