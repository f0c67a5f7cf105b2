"""InferencePool routing (models[].inferencePool): config errors, the rendered pool and picker, diff and cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.components.endpoint_picker import EXT_PROC_PORT, HEALTH_PORT, METRICS_PORT
from infra.config.inference_pool import EPP_IMAGE
from infra.cost.inventory import read_inventory
from infra.gitops.diff import compare
from infra.plan.crds import validate_custom_resource
from infra.plan.model import RecordedResource
from infra.plan.stack import StackPlan
from tests.conftest import planned
from tests.helpers import of_kind

ENTRY = """  slm-deploy:entryPoint:
    enabled: true
    hostname: llm.example.internal
    exposure: internal
    tls: {secretName: llm-tls}
"""


def model(engine: str = "vllm", replicas: int = 2, pool: str = "{enabled: true}") -> str:
    extra = "      gpu: {count: 1}\n" if engine == "vllm" else "      resources: {limits: {cpu: '2', memory: 8Gi}}\n"
    model_id = "Qwen/Qwen3-0.6B" if engine == "vllm" else "qwen3:0.6b"
    return (
        f"\n    - name: qwen3\n      engine: {engine}\n      modelId: {model_id}\n{extra}"
        f"      replicas: {replicas}\n      cache: {{accessMode: ReadWriteMany}}\n      inferencePool: {pool}\n"
    )


def stack(models: str, entry: str = ENTRY) -> str:
    return f"config:\n  slm-deploy:environment: dev\n{entry}  slm-deploy:models:{models}"


CASES = {
    "one-replica": (
        stack(model(replicas=1).replace("      cache: {accessMode: ReadWriteMany}\n", "")),
        "slm-deploy:models[0].inferencePool.enabled: an InferencePool picks among replicas, but the model has one",
    ),
    "not-vllm": (
        stack(model(engine="ollama")),
        "slm-deploy:models[0].inferencePool.enabled: the endpoint picker scores pods from vLLM's queue and KV-cache "
        "metrics, but the engine is 'ollama'",
    ),
    "not-routed": (
        stack(model(), entry=""),
        "slm-deploy:models[0].inferencePool.enabled: the pool is a backend of the entry point's HTTPRoute, but the "
        "model is not routed",
    ),
    "every-address": (
        stack(model(pool="{enabled: true, apiServerCidrs: [0.0.0.0/0]}")),
        "slm-deploy:models[0].inferencePool.apiServerCidrs: '0.0.0.0/0' is every address",
    ),
    "two-pickers": (
        stack(model(pool="{enabled: true, replicas: 2}")),
        "slm-deploy:models[0].inferencePool.replicas:",
    ),
    "unknown-failure-mode": (
        stack(model(pool="{enabled: true, failureMode: Open}")),
        "slm-deploy:models[0].inferencePool.failureMode:",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_pool_settings_give_one_line_with_the_key_path(case: str, stack_dir: Path) -> None:
    text, expected = CASES[case]
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(text)
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(stack_dir)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Pulumi.bad.yaml: " in lines[0] and expected in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_a_pool_with_two_replicas_and_a_route_is_valid(stack_dir: Path) -> None:
    (stack_dir / "stacks" / "Pulumi.ok.yaml").write_text(stack(model()))
    result = CliRunner().invoke(app, ["validate", "--stack", "ok", "--root", str(stack_dir)])
    assert result.exit_code == 0, result.output


def _named(resources: list[RecordedResource], kind: str, name: str) -> dict[str, Any]:
    found = [r.inputs for r in of_kind(resources, kind) if r.inputs.get("metadata", {}).get("name") == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)}"
    return found[0]


def _kind(resources: list[RecordedResource], kind: str) -> list[RecordedResource]:
    return [r for r in resources if r.type.endswith(f":{kind}")]


@pytest.fixture
def staging() -> StackPlan:
    return planned("staging", True)


def test_staging_routes_qwen_through_its_pool_and_phi_through_its_service(staging: StackPlan) -> None:
    routes = {r.inputs["metadata"]["name"]: r.inputs for r in of_kind(staging.run.resources, "HTTPRoute")}
    assert routes["qwen3-4b"]["spec"]["rules"][0]["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "qwen3-4b"}
    ]
    assert routes["phi4-mini"]["spec"]["rules"][0]["backendRefs"][0]["kind"] == "Service"
    pool = _named(staging.run.resources, "InferencePool", "qwen3-4b")
    assert pool["metadata"]["namespace"] == "slm-qwen3-4b"
    assert pool["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": "qwen3-4b",
    }
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"] == {
        "group": "",
        "kind": "Service",
        "name": "qwen3-4b-epp",
        "port": {"number": EXT_PROC_PORT},
        "failureMode": "FailClose",
    }
    assert validate_custom_resource(
        {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool", **pool}
    ) == (
        "valid",
        "",
    )


def test_the_picker_is_hardened_pinned_and_reads_only_its_namespace(staging: StackPlan) -> None:
    resources = staging.run.resources
    deployment = [r.inputs for r in _kind(resources, "Deployment") if r.inputs["metadata"]["name"] == "qwen3-4b-epp"]
    assert len(deployment) == 1
    pod = deployment[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == EPP_IMAGE.reference and "@sha256:" in container["image"]
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True and security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "--secure-serving=false" not in container["args"]
    token = next(v for v in pod["volumes"] if v["name"] == "api-token")["projected"]["sources"][0]
    assert token["serviceAccountToken"]["expirationSeconds"] == 3600
    assert {p["containerPort"] for p in container["ports"]} == {EXT_PROC_PORT, HEALTH_PORT, METRICS_PORT}
    role = next(r.inputs for r in _kind(resources, "Role") if r.inputs["metadata"]["name"] == "qwen3-4b-epp")
    assert role["metadata"]["namespace"] == "slm-qwen3-4b"
    assert sorted(
        (tuple(rule["apiGroups"]), tuple(rule["resources"]), tuple(rule["verbs"])) for rule in role["rules"]
    ) == [
        (("",), ("pods",), ("get", "list", "watch")),
        (("inference.networking.k8s.io",), ("inferencepools",), ("get", "list", "watch")),
    ]
    assert not [r for r in _kind(resources, "ClusterRoleBinding") if "epp" in r.name]


def test_the_picker_talks_only_to_the_gateway_prometheus_the_model_and_the_api_server(staging: StackPlan) -> None:
    policies = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in _kind(staging.run.resources, "NetworkPolicy")
        if r.inputs["metadata"]["namespace"] == "slm-qwen3-4b"
    }
    ingress = policies["endpoint-picker-allow-ingress"]["ingress"]
    assert [(rule["from"][0]["namespaceSelector"]["matchLabels"], rule["ports"]) for rule in ingress] == [
        ({"kubernetes.io/metadata.name": "slm-gateway"}, [{"protocol": "TCP", "port": EXT_PROC_PORT}]),
        ({"kubernetes.io/metadata.name": "monitoring"}, [{"protocol": "TCP", "port": METRICS_PORT}]),
    ]
    egress = policies["endpoint-picker-allow-egress"]["egress"]
    model_rule = egress[1]
    assert model_rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "qwen3-4b"
    assert model_rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert all(peer.get("ipBlock", {}).get("cidr") != "0.0.0.0/0" for rule in egress for peer in rule["to"])
    # The model's pods accept the picker on their metrics port.
    model_side = policies["allow-endpoint-picker-ingress"]
    assert model_side["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == (
        "endpoint-picker"
    )
    # phi4-mini keeps plain Service routing: no picker objects in its namespace.
    assert not [r for r in staging.run.resources if "phi4-mini-epp" in r.name]


def test_cost_prices_the_picker_and_diff_shows_the_backend_change() -> None:
    picker = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "qwen3-4b-epp",
            "namespace": "slm-qwen3-4b",
            "labels": {"app.kubernetes.io/component": "endpoint-picker", "app.kubernetes.io/instance": "qwen3-4b-epp"},
        },
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {"containers": [{"name": "epp", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}]}
            },
        },
    }
    (workload,) = read_inventory([picker]).workloads
    assert (workload.model, workload.cpu, workload.gpus) == ("qwen3-4b-epp", 0.25, 0)

    def route(backend: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "qwen3-4b", "namespace": "slm-qwen3-4b"},
            "spec": {"rules": [{"backendRefs": [{"name": "qwen3-4b", **backend}]}]},
        }

    path = "slm-qwen3-4b/httproute.gateway.networking.k8s.io--qwen3-4b.yaml"
    before = {path: route({"group": "", "kind": "Service", "port": 8000})}
    after = {path: route({"group": "inference.networking.k8s.io", "kind": "InferencePool"})}
    (change,), _ = compare(before, after)
    fields = {f.path: (f.old, f.new) for f in change.fields}
    assert fields["spec.rules[0].backendRefs[name=qwen3-4b].kind"] == ("Service", "InferencePool")
    assert fields["spec.rules[0].backendRefs[name=qwen3-4b].port"] == (8000, None)
