"""Scale to zero behind the KEDA HTTP add-on (docs/scale-to-zero.md), under the mock engine."""

from __future__ import annotations

from typing import Any

from infra.config.http_add_on import (
    EXTERNAL_SCALER_SERVICE,
    INTERCEPTOR_POD_LABELS,
    INTERCEPTOR_PROXY_PORT,
    INTERCEPTOR_PROXY_SERVICE,
    SKIP_SCALED_OBJECT_ANNOTATION,
)
from infra.config.loader import validate_stack_config
from infra.plan.engine import run_program
from infra.plan.model import RecordedResource
from infra.platform import deploy
from tests.helpers import of_kind, one

ZERO = {
    "enabled": True,
    "minReplicas": 0,
    "maxReplicas": 2,
    "scaleToZero": {"enabled": True, "idleSeconds": 600, "wakeTimeoutSeconds": 240},
}
ENTRY = {"enabled": True, "hostname": "llm.example.com", "tls": {"secretName": "llm-tls"}, "requestTimeout": "5m"}


def run(config: dict[str, Any]) -> list[RecordedResource]:
    stack = validate_stack_config(config, "test")
    return run_program(lambda: deploy(stack), "test", True).resources


def stack(**extra: Any) -> dict[str, Any]:
    chat = {
        "name": "chat",
        "engine": "vllm",
        "modelId": "Qwen/Qwen3-4B",
        "gpu": {"count": 1},
        "autoscaling": ZERO,
        "cache": {"accessMode": "ReadWriteMany"},
    }
    warm = {"name": "warm", "engine": "vllm", "modelId": "Qwen/Qwen3-4B", "gpu": {"count": 1}}
    return {
        "environment": "dev",
        "keda": {"install": True, "httpAddOn": {"install": True}},
        "models": [chat, warm],
        **extra,
    }


def test_one_scaler_per_deployment_with_both_triggers() -> None:
    resources = run(stack())
    http = one(resources, "HTTPScaledObject", "chat-autoscaler-httpscaledobject").inputs
    assert http["metadata"]["annotations"] == {SKIP_SCALED_OBJECT_ANNOTATION: "true"}
    spec = http["spec"]
    assert spec["hosts"] == ["chat.slm-chat.svc.cluster.local"]
    assert spec["pathPrefixes"] == ["/v1"]
    assert spec["scaleTargetRef"] == {
        "name": "chat",
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "service": "chat",
        "port": 8000,
    }
    assert spec["timeouts"] == {"conditionWait": "240s", "responseHeader": "600s"}
    scaled = one(resources, "ScaledObject", "chat-autoscaler-scaledobject").inputs["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"], scaled["cooldownPeriod"]) == (0, 2, 600)
    interceptor, queue = scaled["triggers"]
    assert interceptor == {
        "type": "external-push",
        "metadata": {"scalerAddress": f"{EXTERNAL_SCALER_SERVICE}.keda:9090", "httpScaledObject": "chat"},
    }
    assert queue["type"] == "prometheus"
    # The model that keeps its replicas gets neither the add-on's object nor its trigger.
    assert [h.name for h in of_kind(resources, "HTTPScaledObject")] == ["chat-autoscaler-httpscaledobject"]
    # The add-on is a pinned release in KEDA's namespace, after KEDA.
    release = one(resources, "Release", "keda-http-add-on")
    assert (release.inputs["chart"], release.inputs["version"], release.inputs["namespace"]) == (
        "keda-add-ons-http",
        "0.13.0",
        "keda",
    )
    # KEDA itself scales the model servers: its pods run at the system priority (infra/config/priority.py).
    assert one(resources, "Release", "keda-release").inputs["values"]["priorityClassName"] == "slm-deploy-system"


def test_the_interceptor_may_reach_the_model_and_nothing_else_changes() -> None:
    resources = run(stack())
    policies = {p.inputs["metadata"]["name"]: p for p in of_kind(resources, "NetworkPolicy")}
    chat = [p for p in policies.values() if p.inputs["metadata"]["namespace"] == "slm-chat"]
    (allow,) = [p for p in chat if p.inputs["metadata"]["name"] == "allow-interceptor-ingress"]
    (rule,) = allow.inputs["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}},
            "podSelector": {"matchLabels": INTERCEPTOR_POD_LABELS},
        }
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    warm = [p for p in of_kind(resources, "NetworkPolicy") if p.inputs["metadata"]["namespace"] == "slm-warm"]
    assert "allow-interceptor-ingress" not in {p.inputs["metadata"]["name"] for p in warm}


def test_the_route_goes_through_the_interceptor_with_the_models_host() -> None:
    resources = run(stack(entryPoint=ENTRY))
    route = one(resources, "HTTPRoute", "entry-point-route-chat").inputs["spec"]["rules"][0]
    assert route["backendRefs"] == [
        {"group": "", "kind": "Service", "name": INTERCEPTOR_PROXY_SERVICE, "namespace": "keda", "port": 8080}
    ]
    assert INTERCEPTOR_PROXY_PORT == 8080
    (rewrite,) = route["filters"]
    assert rewrite["urlRewrite"]["hostname"] == "chat.slm-chat.svc.cluster.local"
    assert rewrite["urlRewrite"]["path"] == {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1"}
    # The model that keeps its replicas is routed to its own Service as before.
    warm = one(resources, "HTTPRoute", "entry-point-route-warm").inputs["spec"]["rules"][0]
    assert warm["backendRefs"] == [{"group": "", "kind": "Service", "name": "warm", "port": 8000}]
    # KEDA's namespace lets the scaled-to-zero model's route (only) name the interceptor's Service.
    grant = one(resources, "ReferenceGrant", "entry-point-interceptor-grant-keda").inputs
    assert grant["metadata"]["namespace"] == "keda"
    assert grant["spec"] == {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "slm-chat"}],
        "to": [{"group": "", "kind": "Service", "name": INTERCEPTOR_PROXY_SERVICE}],
    }


def test_an_engine_without_a_queue_metric_scales_on_the_interceptor_alone() -> None:
    ollama = {"name": "o", "engine": "ollama", "modelId": "qwen3:0.6b", "autoscaling": {**ZERO, "maxReplicas": 1}}
    resources = run({"environment": "dev", "models": [ollama]})
    (trigger,) = one(resources, "ScaledObject", "o-autoscaler-scaledobject").inputs["spec"]["triggers"]
    assert trigger["type"] == "external-push"
