"""VerticalPodAutoscaler of a model server: recommendation mode, strict schema, and the GPU policy."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from infra.config.autoscaling import VerticalAutoscaling
from infra.config.loader import load_stack_file
from infra.config.model import ModelConfig
from infra.plan.crds import validate_custom_resource
from infra.plan.engine import run_program
from infra.plan.render import manifests, to_yaml
from infra.plan.stack import StackPlan
from infra.platform import deploy
from tests.conftest import ROOT
from tests.helpers import of_kind, one
from tests.unit.test_model_server import _tiny_server

PlanOf = Callable[[str, bool], StackPlan]
MODES = pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])


def _server(vpa: dict[str, Any] | None, preview: bool) -> list[Any]:
    """A small Ollama model server built from its Args alone (as test_model_server builds one)."""
    return _tiny_server({"vpa": vpa} if vpa is not None else {}, preview)


def test_no_vpa_unless_asked() -> None:
    assert not of_kind(_server(None, preview=False), "VerticalPodAutoscaler")


@MODES
def test_the_vpa_recommends_for_the_server_container_only(preview: bool) -> None:
    resources = _server({"enabled": True}, preview)
    vpa = one(resources, "VerticalPodAutoscaler", "tiny-vpa-vpa")
    assert vpa.type == "kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler"
    parent = next(r for r in resources if r.urn == vpa.parent)
    assert parent.type == "slm-deploy:scaling:ModelVpa" and parent.name == "tiny-vpa"
    assert next(r for r in resources if r.urn == parent.parent).type == "slm-deploy:serving:ModelServer"
    spec = vpa.inputs["spec"]
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tiny"}
    # Written out even though it is our default: the VPA's own default evicts pods.
    assert spec["updatePolicy"] == {"updateMode": "Off"}
    deployment = one(resources, "Deployment", "tiny-deployment")
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]["name"]
    policies = spec["resourcePolicy"]["containerPolicies"]
    assert policies[0] == {"containerName": container, "controlledResources": ["cpu", "memory"]}
    assert policies[-1] == {"containerName": "*", "mode": "Off"}
    assert vpa.inputs["metadata"]["name"] == "tiny"
    assert vpa.inputs["metadata"]["labels"]["app.kubernetes.io/instance"] == "tiny"


def _vpa_document() -> dict[str, Any]:
    found = [m for m in manifests(_server({"enabled": True}, False)) if m.kind == "VerticalPodAutoscaler"]
    assert len(found) == 1
    return copy.deepcopy(found[0].document)


def test_the_rendered_vpa_passes_the_strict_schema() -> None:
    assert validate_custom_resource(_vpa_document()) == ("valid", "")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["spec"]["updatePolicy"].update(updateMode="Of"), "spec.updatePolicy.updateMode"),
        (lambda d: d["spec"].update(updatePolicies=d["spec"].pop("updatePolicy")), "spec"),
        (lambda d: d["spec"]["targetRef"].pop("name"), "spec.targetRef"),
        (lambda d: d["spec"]["resourcePolicy"]["containerPolicies"][0].update(controlledResource=[]), ""),
    ],
    ids=["bad-mode", "misspelled-updatePolicy", "no-target-name", "misspelled-controlledResources"],
)
def test_a_wrong_vpa_fails_the_schema(mutate: Callable[[dict[str, Any]], Any], where: str) -> None:
    document = _vpa_document()
    mutate(document)
    status, message = validate_custom_resource(document) or ("", "")
    assert status == "invalid", message
    if where:
        assert message.startswith(f"{where}: "), message


def test_an_unknown_update_mode_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"update_?[mM]ode"):
        ModelConfig.model_validate(
            {
                "name": "tiny",
                "engine": "ollama",
                "modelId": "smollm2:135m",
                "vpa": {"enabled": True, "updateMode": "Auto"},
            }
        )


def test_a_bad_vpa_key_in_a_stack_file_is_one_line_exit_2(stack_dir: Path) -> None:
    (stack_dir / "stacks" / "Pulumi.vpa.yaml").write_text(
        "config:\n  slm-deploy:environment: dev\n  slm-deploy:models:\n"
        "    - name: tiny\n      engine: ollama\n      modelId: smollm2:135m\n"
        "      vpa: {enabled: true, updateMode: Always}\n"
    )
    result = CliRunner().invoke(app, ["validate", "--root", str(stack_dir), "--stack", "vpa"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Pulumi.vpa.yaml" in lines[0] and "models[0].vpa.updateMode" in lines[0], lines[0]
    assert "Traceback" not in result.output


GPU_STACK = """config:
  slm-deploy:environment: {environment}
  slm-deploy:models:
    - name: chat
      engine: vllm
      modelId: Qwen/Qwen3-4B
      gpu: {{count: 1}}
      vpa: {{enabled: true, updateMode: {mode}}}
"""


def _check(stack_dir: Path, environment: str, mode: str) -> tuple[int, list[dict[str, Any]]]:
    (stack_dir / "stacks" / "Pulumi.gpu.yaml").write_text(GPU_STACK.format(environment=environment, mode=mode))
    result = CliRunner().invoke(app, ["check", "--root", str(stack_dir), "--stack", "gpu", "--format", "json"])
    report = json.loads(result.stdout)
    mine = [r for r in report["results"] if r["policyName"] == "vpa-gpu-recommendation-only"]
    return result.exit_code, mine


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_a_gpu_server_vpa_that_evicts_fails_check_in_every_environment(stack_dir: Path, environment: str) -> None:
    code, results = _check(stack_dir, environment, "Recreate")
    violations = [r for r in results if r["status"] == "violation"]
    assert code == 1
    assert violations and all(r["enforcementLevel"] == "mandatory" for r in violations), results
    assert "requests GPUs (updateMode Recreate)" in violations[0]["message"]


def test_a_gpu_server_vpa_in_recommendation_mode_passes(stack_dir: Path) -> None:
    _, results = _check(stack_dir, "dev", '"Off"')
    assert results and all(r["status"] != "violation" for r in results), results


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_reference_stacks_recommend_only(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, True)
    vpas = of_kind(plan.run.resources, "VerticalPodAutoscaler")
    assert {v.inputs["metadata"]["name"] for v in vpas} == {m.name for m in plan.config.models}
    assert all(v.inputs["spec"]["updatePolicy"]["updateMode"] == "Off" for v in vpas)


def test_the_rendered_file_keeps_off_a_string_for_yaml_1_1_readers() -> None:
    """kubectl and the API server read YAML 1.1, where a plain Off is false: the render quotes it."""
    document = _vpa_document()
    text = to_yaml(document)
    assert "updateMode: 'Off'" in text
    assert yaml.safe_load(text) == document  # PyYAML reads YAML 1.1, as go-yaml does


@pytest.mark.parametrize("vpa", [True, False], ids=["vpa", "no-vpa"])
def test_an_aks_stack_turns_on_the_vpa_add_on_only_when_a_model_asks(vpa: bool) -> None:
    stack = load_stack_file(ROOT / "stacks" / "Pulumi.prod.yaml")
    if vpa:
        models = [stack.models[0].model_copy(update={"vpa": VerticalAutoscaling(enabled=True)}), *stack.models[1:]]
        stack = stack.model_copy(update={"models": models})
    resources = run_program(lambda: deploy(stack), "prod", True).resources
    (cluster,) = [r for r in resources if r.type == "azure-native:containerservice:ManagedCluster"]
    profile = cluster.inputs.get("workloadAutoScalerProfile")
    if vpa:
        assert profile == {"verticalPodAutoscaler": {"enabled": True}}
        assert len(of_kind(resources, "VerticalPodAutoscaler")) == 1
    else:
        assert profile is None
