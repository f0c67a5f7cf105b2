"""Rendered manifests: one file per object, byte-identical across renders, valid in strict mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.plan.render import MARKER, RenderError, manifests, write_render
from infra.plan.schema import validate_manifests
from infra.plan.stack import StackPlan
from tests.conftest import REFERENCE_STACKS
from tests.helpers import gated_model_stack

PlanOf = Callable[[str, bool], StackPlan]


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_two_renders_are_byte_identical(tmp_path: Path, root: Path) -> None:
    runner = CliRunner()
    for out in ("first", "second"):
        result = runner.invoke(app, ["render", "--stack", "prod", "--root", str(root), "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    first, second = _tree(tmp_path / "first"), _tree(tmp_path / "second")
    assert first == second
    assert len(first) > 20


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_every_object_passes_strict_schema_validation(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, False)
    items = manifests(plan.run.resources)
    results = validate_manifests(items, plan.config.kubernetes_version)
    assert results, "nothing rendered"
    problems = [(r.path, r.status, r.message) for r in results if r.status != "valid"]
    assert problems == []


def test_strict_validation_catches_a_misspelled_field(plan_of: PlanOf) -> None:
    item = manifests(plan_of("dev", False).run.resources)[0]
    broken = type(item)(path=item.path, urn=item.urn, document={**item.document, "metdata": {}})
    (result,) = validate_manifests([broken], "1.31")
    assert result.status == "invalid"
    assert "metdata" in result.message


def test_render_layout_and_order(plan_of: PlanOf) -> None:
    items = manifests(plan_of("dev", False).run.resources)
    paths = [m.path for m in items]
    assert paths == sorted(paths)
    assert "_cluster/namespace--slm-qwen3-micro.yaml" in paths
    assert "slm-qwen3-micro/deployment.apps--qwen3-micro.yaml" in paths
    for item in items:
        assert list(item.document)[:3] == ["apiVersion", "kind", "metadata"]


def test_render_refuses_a_directory_it_did_not_write(tmp_path: Path, plan_of: PlanOf) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(RenderError, match="is not an earlier render"):
        write_render(manifests(plan_of("dev", False).run.resources), precious)
    assert _tree(precious) == {"notes.txt": b"keep me"}


def test_rerender_replaces_an_earlier_render(tmp_path: Path, plan_of: PlanOf) -> None:
    out = tmp_path / "render"
    items = manifests(plan_of("dev", False).run.resources)
    write_render(items, out)
    (out / "stale.yaml").write_text("old")
    write_render(items, out)
    assert not (out / "stale.yaml").exists()
    assert (out / MARKER).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".render-")]


def test_render_json_output(tmp_path: Path, root: Path) -> None:
    result = CliRunner().invoke(
        app, ["render", "--stack", "dev", "--root", str(root), "--out", str(tmp_path / "r"), "--format", "json"]
    )
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["counts"] == {"valid": len(report["objects"])}


def test_a_kubernetes_secret_renders_with_its_keys_and_passes_strict_schemas(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.gated.yaml").write_text(gated_model_stack())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", "--stack", "gated", "--root", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    from ruamel.yaml import YAML

    secret = YAML(typ="safe").load((out / "slm-gated" / "secret--gated-secrets.yaml").read_text())
    assert secret["stringData"] == {"hfToken": "[secret]"}


def test_review_records_of_helm_releases_and_azure_resources(plan_of: PlanOf) -> None:
    from infra.plan.render import review_records

    records = {r.path: r.document for r in review_records(plan_of("prod", False).run.resources)}
    release = records["_helm/monitoring/kube-prometheus-stack.yaml"]
    assert release["kind"] == "HelmRelease" and "apiVersion" not in release
    assert release["chart"]["name"] == "kube-prometheus-stack" and release["chart"]["version"]
    assert release["values"]["nodeExporter"] == {"enabled": False}
    assert release["values"]["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    pool = records["_azure-native/containerservice.AgentPool--aks-pool-a100-agent-pool.yaml"]
    assert pool["inputs"]["maxCount"] == 4 and pool["type"] == "azure-native:containerservice:AgentPool"
    # A MIG pool: AKS cuts its GPUs with the profile; its nodes name their device plugin config (the pool's entry).
    assert pool["inputs"]["gpuInstanceProfile"] == "MIG3g"
    assert pool["inputs"]["nodeLabels"]["nvidia.com/device-plugin.config"] == "a100"
    plugin = records["_helm/kube-system/nvidia-device-plugin.yaml"]
    assert plugin["values"]["config"] == {"name": "nvidia-device-plugin-configs", "default": "default"}
    assert not [path for path in records if "providers" in path]
