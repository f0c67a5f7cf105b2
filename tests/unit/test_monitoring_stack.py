"""The monitoring stack and queue-based autoscaling, under the mock engine."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.config.loader import StackConfigError, validate_stack_config
from infra.config.secrets import SecretValue
from infra.monitoring import MonitoredModel, render_rules
from infra.plan.engine import run_program
from infra.plan.model import RecordedResource, Secret
from infra.plan.stack import StackPlan
from infra.platform import deploy
from tests.helpers import of_kind, one

PlanOf = Callable[[str, bool], StackPlan]


def vllm(name: str = "chat", **extra: Any) -> dict[str, Any]:
    return {"name": name, "engine": "vllm", "modelId": "Qwen/Qwen3-4B", "gpu": {"count": 1}, **extra}


def run(config: dict[str, Any], preview: bool = True) -> list[RecordedResource]:
    stack = validate_stack_config(config, "test")
    return run_program(lambda: deploy(stack), "test", preview).resources


def test_prod_reference_stack_monitoring(plan_of: PlanOf) -> None:
    plan = plan_of("prod", True)
    release = one(plan.run.resources, "Release", "monitoring-release")
    assert release.inputs["chart"] == "kube-prometheus-stack"
    assert release.inputs["version"] == "85.1.2"
    spec = release.inputs["values"]["prometheus"]["prometheusSpec"]
    for selector in ("serviceMonitor", "podMonitor", "rule", "probe"):
        assert spec[f"{selector}SelectorNilUsesHelmValues"] is False
    sidecar = release.inputs["values"]["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"]) == ("grafana_dashboard", "1")
    # Every pod of the chart runs at the system priority (docs/scheduling.md).
    values = release.inputs["values"]
    classes = {
        values["prometheus"]["prometheusSpec"]["priorityClassName"],
        values["alertmanager"]["alertmanagerSpec"]["priorityClassName"],
        values["grafana"]["priorityClassName"],
        values["prometheusOperator"]["priorityClassName"],
        values["kube-state-metrics"]["priorityClassName"],
    }
    assert classes == {"slm-deploy-system"}
    # One per model, and the log collector's (its error counter) in the monitoring namespace.
    monitors = [m for m in of_kind(plan.run.resources, "ServiceMonitor") if m.name != "logs-collector-scrape"]
    assert sorted(m.inputs["metadata"]["namespace"] for m in monitors) == sorted(
        m.k8s_namespace for m in plan.config.models
    )
    for monitor in monitors:
        assert monitor.inputs["spec"]["endpoints"] == [
            {"interval": "15s", "path": "/metrics", "port": "http", "scheme": "http"}
        ]
    rule = one(plan.run.resources, "PrometheusRule", "monitoring-rules")
    from infra.cost.replica import replica_hourly_cost

    monitored = [MonitoredModel.from_config(m, replica_hourly_cost(plan.config, m)) for m in plan.config.models]
    expected = render_rules(monitored, plan.config.monitoring.alerts)
    assert json.loads(json.dumps(rule.inputs["spec"])) == json.loads(json.dumps(expected))
    # The cost recording rules: one group per model, each replica's share of its node at westeurope's price
    # (docs/cost.md): qwen3-8b runs on one of the two MIG 3g.40gb slices of an A100 node (docs/shared-gpus.md).
    costs = {g["name"]: g["rules"][0]["expr"] for g in rule.inputs["spec"]["groups"] if g["name"].endswith(".cost")}
    assert sorted(costs) == sorted(f"slm-deploy.{m.k8s_namespace}.{m.name}.cost" for m in plan.config.models)
    assert costs["slm-deploy.slm-qwen3-8b.qwen3-8b.cost"].startswith("2.3875 * sum by (namespace)")
    dashboards = of_kind(plan.run.resources, "ConfigMap")
    boards = [d for d in dashboards if d.inputs["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert sorted(b.inputs["metadata"]["name"] for b in boards) == [
        "slm-dashboard-slm-logs",
        "slm-dashboard-slm-overview",
        "slm-dashboard-slm-vllm",
    ]


def test_ollama_gets_no_scrape_target(plan_of: PlanOf) -> None:
    plan = plan_of("dev", True)
    assert [m.name for m in of_kind(plan.run.resources, "ServiceMonitor")] == ["logs-collector-scrape"]
    rule = one(plan.run.resources, "PrometheusRule", "monitoring-rules")
    alerts = {r["alert"] for g in rule.inputs["spec"]["groups"] for r in g["rules"]}
    assert "SlmDeploymentUnavailable" in alerts and "SlmQueueDepthHigh" not in alerts


def test_existing_prometheus_gets_only_scrape_rule_and_dashboard_objects() -> None:
    resources = run({"environment": "dev", "monitoring": {"mode": "existing"}, "models": [vllm()]})
    assert of_kind(resources, "Release") == []
    assert len(of_kind(resources, "ServiceMonitor")) == 1
    assert len(of_kind(resources, "PrometheusRule")) == 1


def test_no_monitoring() -> None:
    resources = run({"environment": "dev", "monitoring": {"mode": "none"}, "models": [vllm()]})
    assert [r for r in resources if "monitoring" in r.type] == []


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_receivers_reference_a_secret(preview: bool) -> None:
    url = "https://hooks.example.com/services/T000/B000/canary-webhook"
    resources = run(
        {
            "environment": "dev",
            "secrets": {"slackWebhook": SecretValue(plaintext=url)},
            "monitoring": {"receivers": [{"name": "oncall", "type": "slack", "urlSecret": "slackWebhook"}]},
            "models": [vllm()],
        },
        preview,
    )
    secret = one(resources, "Secret", "monitoring-receiver-urls")
    assert isinstance(secret.inputs["stringData"], Secret)
    routing = one(resources, "AlertmanagerConfig", "monitoring-alert-routing")
    assert routing.inputs["spec"]["receivers"] == [
        {
            "name": "oncall",
            "slackConfigs": [{"apiURL": {"key": "oncall", "name": "slm-alert-receivers"}, "sendResolved": True}],
        }
    ]
    assert url not in repr([r.inputs for r in resources])


def test_queue_based_scaled_object(plan_of: PlanOf) -> None:
    plan = plan_of("prod", True)
    scaled = one(plan.run.resources, "ScaledObject", "qwen3-small-autoscaler-scaledobject")
    spec = scaled.inputs["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "qwen3-small"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 6)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert (
        trigger["metadata"]["query"]
        == 'sum(vllm:num_requests_waiting{namespace="slm-qwen3-small",model_name="qwen3-1.7b"})'
    )
    assert trigger["metadata"]["threshold"] == "5"
    assert trigger["metadata"]["serverAddress"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 600
    keda = one(plan.run.resources, "Release", "keda-release")
    assert (keda.inputs["chart"], keda.inputs["version"]) == ("keda", "2.20.1")
    deployment = one(plan.run.resources, "Deployment", "qwen3-small-deployment")
    assert deployment.inputs["spec"]["replicas"] == 2


def test_hpa_backend() -> None:
    scaling = {"enabled": True, "backend": "hpa", "minReplicas": 1, "maxReplicas": 3}
    resources = run(
        {"environment": "dev", "models": [vllm(autoscaling=scaling, cache={"accessMode": "ReadWriteMany"})]}
    )
    hpa = one(resources, "HorizontalPodAutoscaler", "chat-autoscaler-hpa")
    (metric,) = hpa.inputs["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == "vllm_num_requests_waiting"


@pytest.mark.parametrize(
    ("environment", "scaling", "message"),
    [
        (
            "prod",
            {"enabled": True, "minReplicas": 0, "maxReplicas": 4, "scaleToZero": {"enabled": True}},
            "scale to zero is refused in prod",
        ),
        ("dev", {"enabled": True, "minReplicas": 0, "maxReplicas": 4}, "minReplicas 0 without scaleToZero.enabled"),
        ("dev", {"enabled": True, "minReplicas": 5, "maxReplicas": 4}, "minReplicas 5 is above maxReplicas 4"),
        ("dev", {"enabled": True, "backend": "hpa", "minReplicas": 0}, "an HPA cannot scale to zero"),
    ],
)
def test_autoscaling_config_errors(environment: str, scaling: dict[str, Any], message: str) -> None:
    model = vllm(autoscaling=scaling, cache={"accessMode": "ReadWriteMany"}, replicas=2)
    with pytest.raises(StackConfigError, match=message):
        validate_stack_config({"environment": environment, "models": [model]}, "test")


def test_scale_to_zero_is_allowed_in_dev() -> None:
    model = vllm(
        autoscaling={"enabled": True, "minReplicas": 0, "maxReplicas": 2, "scaleToZero": {"enabled": True}},
        cache={"accessMode": "ReadWriteMany"},
    )
    resources = run({"environment": "dev", "models": [model]})
    assert one(resources, "ScaledObject", "chat-autoscaler-scaledobject").inputs["spec"]["minReplicaCount"] == 0


def test_ollama_cannot_autoscale_on_a_queue() -> None:
    model = {"name": "o", "engine": "ollama", "modelId": "qwen3:0.6b", "autoscaling": {"enabled": True}}
    with pytest.raises(StackConfigError, match="engine 'ollama' exports none"):
        validate_stack_config({"environment": "dev", "models": [model]}, "test")
