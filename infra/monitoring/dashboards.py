"""Grafana dashboards (JSON) for the model servers, from ``templates/monitoring/dashboards/*.yaml.j2``.

A template renders a short YAML description of one dashboard (variables, rows of panels, PromQL
targets); this module turns it into Grafana's dashboard JSON model (ids, grid positions, the
``datasource`` variable every panel uses). Templates guard engine-specific panels with
``has('<series>')``, asked of the metric catalogue for the engines the dashboard covers.

grafanalib was considered and left out: its last release is from January 2024.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from infra.config.monitoring import MonitoringOptions
from infra.monitoring.logs import ERROR_COUNTER, error_lines_logql
from infra.monitoring.metrics import CLIENT_LABEL, ENGINES, OUTPUT_TOKEN_COUNTERS, TOKEN_USAGE, EngineName, series_for
from infra.monitoring.model import MonitoredModel, quote
from infra.templating import render_template
from infra.yamlio import load_yaml

DASHBOARD_TEMPLATE_DIR = "monitoring/dashboards"
#: Dashboard file name → (template, engines it covers; ``None`` for every engine in the stack).
DASHBOARDS: dict[str, tuple[str, EngineName | None]] = {
    "slm-overview.json": ("overview.yaml.j2", None),
    "slm-vllm.json": ("engine.yaml.j2", "vllm"),
    "slm-onnx.json": ("engine.yaml.j2", "onnx"),
    "slm-ollama.json": ("ollama.yaml.j2", "ollama"),
    "slm-llamacpp.json": ("llamacpp.yaml.j2", "llamacpp"),
}
ENGINE_TITLES: dict[EngineName, str] = {
    "vllm": "vLLM",
    "onnx": "ONNX Runtime",
    "ollama": "Ollama",
    "llamacpp": "llama.cpp",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Panels of type ``logs`` query Loki through their own data source variable.
LOGS_DATASOURCE = {"type": "loki", "uid": "${logs}"}
#: Dashboard of the container logs, only when the stack collects logs.
LOGS_DASHBOARD = "slm-logs.json"
LOGS_TEMPLATE = "logs.yaml.j2"
SCHEMA_VERSION = 39
_WIDTH = 24
_HEIGHT = 8


def _legend(label: str) -> str:
    return "{{%s}}" % label  # noqa: UP031 - Grafana's legend syntax


def _pods(models: Sequence[MonitoredModel]) -> str:
    return f"({_deployments(models)})-[a-z0-9]+-[a-z0-9]+"


def _deployments(models: Sequence[MonitoredModel]) -> str:
    return "|".join(sorted({deployment for model in models for deployment in model.deployments}))


def _context(
    models: Sequence[MonitoredModel], engines: Sequence[EngineName], options: MonitoringOptions, quotas: bool = False
) -> dict[str, Any]:
    available = frozenset().union(*(series_for(engine) for engine in engines))
    ns = 'namespace=~"$namespace"'
    return {
        "engine": engines[0] if len(engines) == 1 else None,
        "engine_title": ENGINE_TITLES[engines[0]] if len(engines) == 1 else "",
        "has": lambda series: series in available,
        "any_gpu": any(model.gpu_count > 0 for model in models),
        # The cost panels read the cost recording rules, which exist only for priced models that count tokens.
        "any_cost": any(
            model.replica_cost_per_hour is not None and OUTPUT_TOKEN_COUNTERS[model.engine] for model in models
        ),
        # The stable-versus-canary row, for models in a canary rollout (series labelled model_version).
        "any_canary": any(model.versions for model in models),
        "lbl": _legend,
        # Per-client token panels, from Envoy AI Gateway's metrics, when the entry point has quotas.
        "quotas": quotas,
        "token_usage": TOKEN_USAGE,
        "client_label": CLIENT_LABEL,
        "gpu": {"namespace": options.dcgm_namespace_label, "pod": options.dcgm_pod_label},
        # Label selectors, braces included, for each source of series.
        "vsel": '{%s,model_name=~"$model_name"}' % ns,  # noqa: UP031
        "osel": "{%s}" % ns,  # noqa: UP031 - engine series on the overview (no model_name variable there)
        "ksel": "{%s,deployment=~%s}" % (ns, quote(_deployments(models))),  # noqa: UP031
        "psel": '{%s,pod=~%s,container!="",container!="POD"}' % (ns, quote(_pods(models))),  # noqa: UP031
        "usel": "{%s,pod=~%s}" % (ns, quote(_pods(models))),  # noqa: UP031 - up and restarts
        "gsel": '{%s=~"$namespace",%s=~%s}'  # noqa: UP031
        % (options.dcgm_namespace_label, options.dcgm_pod_label, quote(_pods(models))),
    }


def _variable(spec: dict[str, Any], namespaces: Sequence[str]) -> dict[str, Any]:
    name = spec["name"]
    common = {"name": name, "label": spec.get("label", name), "hide": 0, "skipUrlSync": False}
    if spec["type"] == "custom":
        values = sorted(set(namespaces))
        return {
            **common,
            "type": "custom",
            "query": ",".join(values),
            "multi": True,
            "includeAll": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [{"selected": False, "text": value, "value": value} for value in values],
        }
    if spec["type"] == "query":
        return {
            **common,
            "type": "query",
            "datasource": DATASOURCE,
            "definition": spec["query"],
            "query": {"query": spec["query"], "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2,
            "sort": 1,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "regex": "",
        }
    raise ValueError(f"unknown variable type {spec['type']!r}")


def _panel(spec: dict[str, Any], panel_id: int, x: int, y: int, width: int) -> dict[str, Any]:
    kind = spec.get("type", "timeseries")
    panel: dict[str, Any] = {
        "id": panel_id,
        "type": kind,
        "title": spec["title"],
        "description": spec.get("description", ""),
        "gridPos": {"h": spec.get("height", _HEIGHT), "w": width, "x": x, "y": y},
    }
    if kind == "text":
        panel["options"] = {"mode": "markdown", "content": spec["content"]}
        return panel
    if kind == "logs":
        # LogQL, newest lines first; no field config (a logs panel shows lines, not numbers).
        panel["datasource"] = LOGS_DATASOURCE
        panel["options"] = {
            "showTime": True,
            "wrapLogMessage": True,
            "sortOrder": "Descending",
            "enableLogDetails": True,
            "dedupStrategy": "none",
        }
        panel["targets"] = [
            {
                "refId": chr(ord("A") + index),
                "datasource": LOGS_DATASOURCE,
                "expr": " ".join(str(target["expr"]).split()),
                "queryType": "range",
                "maxLines": spec.get("max_lines", 200),
            }
            for index, target in enumerate(spec["targets"])
        ]
        return panel
    defaults: dict[str, Any] = {"unit": spec.get("unit", "short")}
    for key in ("min", "max"):
        if key in spec:
            defaults[key] = spec[key]
    panel["datasource"] = DATASOURCE
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    if kind == "stat":
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    else:
        panel["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    panel["targets"] = [
        {
            "refId": chr(ord("A") + index),
            "datasource": DATASOURCE,
            "expr": " ".join(str(target["expr"]).split()),
            "legendFormat": target.get("legend", "__auto"),
            "range": True,
        }
        for index, target in enumerate(spec["targets"])
    ]
    return panel


def build_dashboard(spec: dict[str, Any], namespaces: Sequence[str]) -> dict[str, Any]:
    """Grafana's dashboard JSON model for a rendered dashboard description."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in spec["rows"]:
        if not row["panels"]:
            continue
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": row["title"],
                "collapsed": False,
                "gridPos": {"h": 1, "w": _WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        per_line = row.get("columns", 3)
        width = _WIDTH // per_line
        for index, panel in enumerate(row["panels"]):
            column = index % per_line
            if column == 0 and index:
                y += _HEIGHT
            panels.append(_panel(panel, len(panels) + 1, column * width, y, width))
        y += _HEIGHT
    datasource_variable = {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "regex": "",
        "options": [],
        "refresh": 1,
        "skipUrlSync": False,
    }
    variables = [datasource_variable]
    if any(panel["type"] == "logs" for panel in panels):
        variables.append({**datasource_variable, "name": "logs", "label": "Logs data source", "query": "loki"})
    return {
        "uid": spec["uid"],
        "title": spec["title"],
        "description": spec.get("description", ""),
        "tags": ["slm-deploy", *spec.get("tags", [])],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [*variables, *(_variable(v, namespaces) for v in spec.get("variables", []))]},
        "panels": panels,
    }


def render_dashboard(
    file_name: str, models: Sequence[MonitoredModel], options: MonitoringOptions | None = None, quotas: bool = False
) -> dict[str, Any]:
    """One dashboard of ``DASHBOARDS`` for ``models`` (the models it covers are picked from them); ``quotas``: the
    stack's entry point has per-client quotas (the overview shows tokens per client)."""
    options = options or MonitoringOptions()
    template, engine = DASHBOARDS[file_name]
    covered = [model for model in models if engine is None or model.engine == engine]
    if not covered:
        raise ValueError(f"{file_name}: no model of engine {engine}")
    engines = [engine] if engine else sorted({model.engine for model in covered}, key=ENGINES.index)
    text = render_template(f"{DASHBOARD_TEMPLATE_DIR}/{template}", **_context(covered, engines, options, quotas))
    return build_dashboard(load_yaml(text), [model.namespace for model in covered])


def render_logs_dashboard(models: Sequence[MonitoredModel]) -> dict[str, Any]:
    """The container-logs dashboard: error lines per second per model, and a panel of recent errors per model."""
    text = render_template(
        f"{DASHBOARD_TEMPLATE_DIR}/{LOGS_TEMPLATE}",
        models=sorted(models, key=lambda model: (model.namespace, model.name)),
        error_counter=ERROR_COUNTER,
        errors=error_lines_logql,
        quote=quote,
        lbl=_legend,
    )
    return build_dashboard(load_yaml(text), [model.namespace for model in models])


def render_dashboards(
    models: Sequence[MonitoredModel], options: MonitoringOptions | None = None, logs: bool = False, quotas: bool = False
) -> dict[str, str]:
    """Dashboard file name → JSON text: the overview, one per engine the models use, and the logs one when the
    stack collects logs (``logs``).

    Deliver each as a ConfigMap labelled ``grafana_dashboard: "1"`` for Grafana's sidecar.
    """
    if not models:
        return {}
    engines = {model.engine for model in models}
    rendered = {
        file_name: render_dashboard(file_name, models, options, quotas)
        for file_name, (_, engine) in DASHBOARDS.items()
        if engine is None or engine in engines
    }
    if logs:
        rendered[LOGS_DASHBOARD] = render_logs_dashboard(models)
    return {
        file_name: json.dumps(dashboard, indent=2, sort_keys=True) + "\n" for file_name, dashboard in rendered.items()
    }
