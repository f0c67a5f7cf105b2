"""Grafana dashboards: valid dashboard JSON, and every query names only series the engines export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitoring_cases import EXPORTED_LABELS, MODELS

from infra.monitoring import MonitoredModel, MonitoringOptions
from infra.monitoring.dashboards import DASHBOARDS, render_dashboards
from infra.monitoring.metrics import series_for
from infra.monitoring.promql import metric_names
from tests.helpers import installed

_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$")
SUBSETS: dict[str, list[MonitoredModel]] = {
    "all": list(MODELS.values()),
    **{
        f"only-{engine}": [model for model in MODELS.values() if model.engine == engine]
        for engine in ("vllm", "onnx", "ollama")
    },
    "cpu-only": [model for model in MODELS.values() if model.gpu_count == 0],
}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] not in ("row", "text")]


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets and variable queries."""
    result = [target["expr"] for panel in panels(dashboard) for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["definition"])
            assert match, variable["definition"]
            result.append(match.group("selector"))
    return result


def allowed_series(file_name: str, models: list[MonitoredModel]) -> frozenset[str]:
    engine = DASHBOARDS[file_name][1]
    engines = {engine} if engine else {model.engine for model in models}
    return frozenset().union(*(series_for(name) for name in engines))


@pytest.mark.parametrize("subset", sorted(SUBSETS))
def test_every_query_uses_only_series_the_engines_export(subset: str) -> None:
    models = SUBSETS[subset]
    dashboards = render_dashboards(models)
    engines = {model.engine for model in models}
    expected = {"slm-overview.json"} | {f"slm-{engine}.json" for engine in engines}
    assert set(dashboards) == expected
    for file_name, text in dashboards.items():
        dashboard = json.loads(text)
        allowed = allowed_series(file_name, models)
        for expr in queries(dashboard):
            names = metric_names(expr)
            assert names, f"{file_name}: no metric in {expr}"
            assert names <= allowed, f"{file_name}: {sorted(names - allowed)} not exported, in {expr}"
            assert "gpu_cache_usage_perc" not in expr


def test_engine_dashboards_show_what_each_engine_has() -> None:
    dashboards = {name: json.loads(text) for name, text in render_dashboards(list(MODELS.values())).items()}
    used = {name: set().union(*(metric_names(q) for q in queries(d))) for name, d in dashboards.items()}
    vllm_only = {"vllm:kv_cache_usage_perc", "vllm:num_preemptions_total", "vllm:inter_token_latency_seconds_bucket"}
    assert vllm_only <= used["slm-vllm.json"]
    assert not vllm_only & used["slm-onnx.json"]
    assert "vllm:time_to_first_token_seconds_bucket" in used["slm-onnx.json"]
    assert not {name for name in used["slm-ollama.json"] if name.startswith("vllm:") or name == "up"}
    assert {"DCGM_FI_DEV_GPU_UTIL", "kube_deployment_status_replicas_available"} <= used["slm-overview.json"]
    assert any(panel["type"] == "text" for panel in dashboards["slm-ollama.json"]["panels"])
    assert render_dashboards([]) == {}


def test_gpu_panels_only_with_gpus_and_dcgm_labels_follow_the_options() -> None:
    cpu = [model for model in MODELS.values() if model.gpu_count == 0]
    for text in render_dashboards(cpu).values():
        assert "DCGM_" not in text
    vllm = [MODELS["vllm-gpu"]]
    text = render_dashboards(vllm, EXPORTED_LABELS)["slm-vllm.json"]
    assert 'exported_namespace=~\\"$namespace\\"' in text
    assert "{{exported_pod}}" in text


@pytest.mark.parametrize("options", [MonitoringOptions(), EXPORTED_LABELS], ids=["default", "exported-labels"])
def test_dashboards_are_valid_grafana_dashboards(options: MonitoringOptions) -> None:
    dashboards = render_dashboards(list(MODELS.values()), options)
    uids = [json.loads(text)["uid"] for text in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for file_name, text in dashboards.items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*\.json", file_name)
        dashboard = json.loads(text)
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dashboard["uid"])
        assert dashboard["title"].startswith("SLM / ")
        assert isinstance(dashboard["schemaVersion"], int)
        assert "slm-deploy" in dashboard["tags"]
        variables = dashboard["templating"]["list"]
        assert variables[0]["name"] == "datasource"
        assert variables[0]["type"] == "datasource"
        assert variables[0]["query"] == "prometheus"
        names = {variable["name"] for variable in variables}
        namespace = next(variable for variable in variables if variable["name"] == "namespace")
        assert namespace["options"], file_name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        occupied: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            columns, lines = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
            cells = {(x, y) for x in columns for y in lines}
            assert not cells & occupied, f"{file_name}: '{panel['title']}' overlaps another panel"
            occupied |= cells
            assert panel["title"]
        assert panels(dashboard), file_name
        for panel in panels(dashboard):
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            assert panel["fieldConfig"]["defaults"]["unit"]
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert len(ref_ids) == len(set(ref_ids))
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                assert target["expr"].strip()
                used = set(re.findall(r"\$(?:\{)?([a-zA-Z_][a-zA-Z0-9_]*)", target["expr"]))
                assert used <= names | {"__rate_interval"}, f"{panel['title']}: undefined variable in {target['expr']}"


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule), Grafana's $__rate_interval set to 5m."""
    binary = installed("promtool", "prometheus")
    rules = []
    for text in render_dashboards(list(MODELS.values())).values():
        for expr in queries(json.loads(text)):
            rules.append({"record": "slm:dashboard_query:check", "expr": expr.replace("$__rate_interval", "5m")})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run([binary, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_with_quotas_the_overview_shows_tokens_per_client_from_the_ai_gateway() -> None:
    models = list(MODELS.values())
    plain = json.loads(render_dashboards(models)["slm-overview.json"])
    quotas = json.loads(render_dashboards(models, quotas=True)["slm-overview.json"])
    added = set(queries(quotas)) - set(queries(plain))
    assert len(added) == 2
    allowed = allowed_series("slm-overview.json", models)
    for expr in added:
        assert metric_names(expr) == {"gen_ai_client_token_usage_sum"} <= allowed
        assert expr.startswith("sum by (slm_client)")
