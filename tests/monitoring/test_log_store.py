"""Logs next to metrics: Loki and the collector as hardened releases, the data source, the dashboard and the alert."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.components.log_store import ALLOY_CHART_VERSION, LOKI_CHART_VERSION, LOKI_REPOSITORY
from infra.config.loader import validate_stack_config
from infra.monitoring import MonitoredModel, render_rules
from infra.monitoring.dashboards import LOGS_DASHBOARD, render_dashboards
from infra.monitoring.logs import ERROR_COUNTER, ERROR_PATTERN, alloy_config
from infra.monitoring.metrics import series_for
from infra.monitoring.promql import metric_names
from infra.plan.crds import validate_custom_resource
from infra.plan.engine import run_program
from infra.plan.model import RecordedResource
from infra.plan.render import manifests, review_records
from infra.plan.stack import StackPlan
from infra.platform import deploy
from tests.conftest import REFERENCE_STACKS
from tests.helpers import of_kind, one

PlanOf = Callable[[str, bool], StackPlan]
RETENTION_DAYS = {"dev": 3, "staging": 7, "prod": 30, "canary": 7}


def run(config: dict[str, Any], preview: bool = True) -> list[RecordedResource]:
    stack = validate_stack_config(config, "test")
    return run_program(lambda: deploy(stack), "test", preview).resources


def tiny(name: str = "tiny") -> dict[str, Any]:
    return {"name": name, "engine": "ollama", "modelId": "smollm2:135m"}


def _walk(value: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found += _walk(item)
    elif isinstance(value, list):
        for item in value:
            found += _walk(item)
    return found


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_reference_stacks_install_pinned_releases_with_their_retention(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, True)
    loki = one(plan.run.resources, "Release", "logs-loki")
    alloy = one(plan.run.resources, "Release", "logs-collector")
    assert (loki.inputs["chart"], loki.inputs["version"]) == ("loki", LOKI_CHART_VERSION)
    assert loki.inputs["repositoryOpts"]["repo"] == LOKI_REPOSITORY
    assert (alloy.inputs["chart"], alloy.inputs["version"]) == ("alloy", ALLOY_CHART_VERSION)
    assert loki.inputs["namespace"] == alloy.inputs["namespace"] == plan.config.monitoring.namespace
    values = loki.inputs["values"]["loki"]
    assert values["limits_config"]["retention_period"] == f"{RETENTION_DAYS[stack] * 24}h"
    assert values["compactor"]["retention_enabled"] is True
    # Reviewed like the chart's release: a record per release in the render.
    paths = {record.path for record in review_records(plan.run.resources)}
    assert {"_helm/monitoring/loki.yaml", "_helm/monitoring/alloy.yaml"} <= paths


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_every_pod_the_releases_run_is_restricted(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, True)
    for name in ("logs-loki", "logs-collector"):
        values = one(plan.run.resources, "Release", name).inputs["values"]
        contexts = [m for m in _walk(values) if "runAsNonRoot" in m]
        assert contexts, name
        for context in contexts:
            assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, (name, context)
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, (name, context)
            if "capabilities" in context:
                assert context["capabilities"] == {"drop": ["ALL"]}
                assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert not [m for m in _walk(values) if "hostPath" in m], name
    alloy = one(plan.run.resources, "Release", "logs-collector").inputs["values"]
    assert alloy["controller"]["type"] == "deployment"
    assert alloy["alloy"]["mounts"]["varlog"] is False and alloy["alloy"]["mounts"]["dockercontainers"] is False
    loki = one(plan.run.resources, "Release", "logs-loki").inputs["values"]
    for component in ("gateway", "lokiCanary", "test", "minio", "chunksCache", "resultsCache"):
        assert loki[component]["enabled"] is False, component
    assert loki["serviceAccount"]["automountServiceAccountToken"] is False
    # Monitoring runs at the system priority, like Prometheus (the charts' singleBinary / controller values).
    assert loki["singleBinary"]["priorityClassName"] == alloy["controller"]["priorityClassName"] == "slm-deploy-system"


def test_the_collector_reads_the_models_and_the_gateway_proxies(plan_of: PlanOf) -> None:
    plan = plan_of("staging", True)
    content = one(plan.run.resources, "Release", "logs-collector").inputs["values"]["alloy"]["configMap"]["content"]
    names = re.search(r"names = \[(.*)\]", content)
    assert names is not None
    expected = sorted({m.k8s_namespace for m in plan.config.models} | {plan.config.entry_point.proxy_namespace})
    assert json.loads(f"[{names.group(1)}]") == expected
    assert "loki.source.kubernetes" in content and "/var/log" not in content
    rbac = one(plan.run.resources, "Release", "logs-collector").inputs["values"]["rbac"]
    assert rbac["namespaces"] == expected  # Roles in those namespaces only, no ClusterRole
    assert rbac["rules"] == [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}]
    assert '"http://loki.monitoring.svc:3100/loki/api/v1/push"' in content


def test_alloy_config_escapes_the_pattern_twice() -> None:
    content = alloy_config(["slm-a"], "monitoring")
    (selector,) = re.findall(r"selector = (\".*\")", content)
    logql = json.loads(selector)  # the Alloy string literal …
    assert logql.startswith('{namespace=~".+"} |~ ')
    pattern = json.loads(logql.split("|~ ", 1)[1])  # … holds a LogQL string literal holding the regex
    assert pattern == ERROR_PATTERN


@pytest.mark.parametrize(
    ("line", "is_error"),
    [
        ("ERROR 11-29 18:02:11 [engine.py:160] RuntimeError: CUDA out of memory", True),
        ("Traceback (most recent call last):", True),
        ('time=2026-11-29T18:02:11Z level=error msg="model failed to load"', True),
        ("panic: runtime error: invalid memory address", True),
        ('INFO:     10.0.0.7:52344 - "POST /v1/chat/completions HTTP/1.1" 200 OK', False),
        ("srv  log_server_r: request: GET /health 127.0.0.1 200", False),
        ('metric vllm:request_success_total{finished_reason="error"} exported', True),
        ("loaded 0 errors_total series", False),
    ],
)
def test_error_pattern(line: str, is_error: bool) -> None:
    # Python's re reads this RE2 pattern the same way (case-insensitive flag, \b word boundaries).
    assert bool(re.search(ERROR_PATTERN, line)) is is_error


def test_grafana_gets_loki_as_a_data_source(plan_of: PlanOf) -> None:
    values = one(plan_of("prod", True).run.resources, "Release", "monitoring-release").inputs["values"]
    (source,) = values["grafana"]["additionalDataSources"]
    assert source["type"] == "loki" and source["uid"] == "loki"
    assert source["url"] == "http://loki.monitoring.svc:3100"


def test_the_collector_is_scraped_with_the_log_lines_labels(plan_of: PlanOf) -> None:
    resources = plan_of("dev", True).run.resources
    scrape = one(resources, "ServiceMonitor", "logs-collector-scrape")
    (endpoint,) = scrape.inputs["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True and endpoint["port"] == "http-metrics"
    policy = one(resources, "NetworkPolicy", "logs-loki-ingress")
    assert policy.inputs["spec"]["policyTypes"] == ["Ingress"]
    assert policy.inputs["spec"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": {}}}]}]
    for item in manifests(resources):
        result = validate_custom_resource(item.document)
        assert result is None or result == ("valid", ""), (item.path, result)


@pytest.mark.parametrize(
    "monitoring",
    [{"logs": {"enabled": False}}, {"mode": "existing"}, {"mode": "none"}],
    ids=["logs-off", "existing-prometheus", "no-monitoring"],
)
def test_no_log_store_without_the_chart_or_when_off(monitoring: dict[str, Any]) -> None:
    resources = run({"environment": "dev", "monitoring": monitoring, "models": [tiny()]})
    assert not [r for r in of_kind(resources, "Release") if r.name.startswith("logs-")]
    assert not [r for r in resources if r.type == "slm-deploy:monitoring:LogStore"]
    for release in of_kind(resources, "Release"):
        assert "additionalDataSources" not in release.inputs["values"].get("grafana", {})
    rules = [r for r in of_kind(resources, "PrometheusRule")]
    alerts = {a["alert"] for r in rules for g in r.inputs["spec"]["groups"] for a in g["rules"]}
    assert "SlmErrorLogRateHigh" not in alerts
    boards = {c.inputs["metadata"]["name"] for c in of_kind(resources, "ConfigMap")}
    assert "slm-dashboard-slm-logs" not in boards


def test_the_error_alert_follows_the_logs_switch() -> None:
    model = MonitoredModel("tiny", "slm-tiny", "ollama", "tiny")
    on = {r["alert"]: r for r in render_rules([model])["groups"][0]["rules"]}
    off = {r["alert"] for r in render_rules([model], logs=False)["groups"][0]["rules"]}
    assert "SlmErrorLogRateHigh" in on and "SlmErrorLogRateHigh" not in off
    assert ERROR_COUNTER in on["SlmErrorLogRateHigh"]["expr"]
    assert 'namespace="slm-tiny",model="tiny"' in on["SlmErrorLogRateHigh"]["expr"]


def test_the_logs_dashboard_has_a_recent_errors_panel_per_model() -> None:
    models = [
        MonitoredModel("chat", "slm-chat", "vllm", "phi", gpu_count=1),
        MonitoredModel("tiny", "slm-tiny", "ollama", "tiny"),
    ]
    assert LOGS_DASHBOARD not in render_dashboards(models)
    dashboard = json.loads(render_dashboards(models, logs=True)[LOGS_DASHBOARD])
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["logs"]["type"] == "datasource" and variables["logs"]["query"] == "loki"
    logs = [p for p in dashboard["panels"] if p["type"] == "logs"]
    assert [p["title"] for p in logs] == ["Recent errors: chat (slm-chat)", "Recent errors: tiny (slm-tiny)"]
    for panel, model in zip(logs, models, strict=True):
        (target,) = panel["targets"]
        assert panel["datasource"] == target["datasource"] == {"type": "loki", "uid": "${logs}"}
        assert (
            target["expr"] == f'{{namespace="{model.namespace}",model="{model.name}"}} |~ {json.dumps(ERROR_PATTERN)}'
        )
    promql = [t["expr"] for p in dashboard["panels"] if p["type"] == "timeseries" for t in p["targets"]]
    assert promql and all(metric_names(expr) <= series_for("ollama") for expr in promql)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("logs", "key", "fragment"),
    [
        ({"retentionDays": 0}, "monitoring.logs.retentionDays", "must be at least 1, got 0"),
        ({"retentionDays": 400}, "monitoring.logs.retentionDays", "must be at most 365, got 400"),
        ({"retension": 7}, "monitoring.logs.retension", ""),
        ({"storageSize": "ten gigs"}, "monitoring.logs.storageSize", ""),
    ],
)
def test_bad_logs_settings_are_one_line_exit_2(stack_dir: Path, logs: dict[str, Any], key: str, fragment: str) -> None:
    text = (
        "config:\n  slm-deploy:environment: dev\n"
        f"  slm-deploy:monitoring:\n    logs: {json.dumps(logs)}\n"
        "  slm-deploy:models:\n    - {name: tiny, engine: ollama, modelId: 'smollm2:135m'}\n"
    )
    (stack_dir / "stacks" / "Pulumi.logs.yaml").write_text(text)
    result = CliRunner().invoke(app, ["validate", "--root", str(stack_dir), "--stack", "logs"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert "Pulumi.logs.yaml" in lines[0] and key in lines[0], lines[0]
    assert fragment in lines[0]
