"""The stable-versus-canary comparison alerts (models[].versions): rendered only for a canary rollout on an engine
with the compared series, proven by promtool (fires on a slower or failing canary, silent on a like-for-like one)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.monitoring import MonitoredModel, render_rules, rules_yaml
from infra.monitoring.canary_rules import canary_group_name
from policies.lib.canary import ERROR_ALERT, TTFT_ALERT
from tests.helpers import installed

CANARY = MonitoredModel("qwen", "slm-qwen", "vllm", "qwen", gpu_count=1, versions=("v1", "v2"))
PLAIN = MonitoredModel("phi", "slm-phi", "vllm", "phi", gpu_count=1)
CPU_CANARY = MonitoredModel("smol", "slm-smol", "llamacpp", "smol", versions=("a", "b"))


def _canary_rules(models: list[MonitoredModel]) -> dict[str, list[dict[str, Any]]]:
    return {g["name"]: g["rules"] for g in render_rules(models)["groups"] if g["name"].endswith(".canary")}


def test_only_a_rollout_on_an_engine_with_the_series_gets_the_comparison() -> None:
    groups = _canary_rules([CANARY, PLAIN, CPU_CANARY])
    assert list(groups) == [canary_group_name(CANARY)]
    rules = {rule["alert"]: rule for rule in groups[canary_group_name(CANARY)]}
    assert set(rules) == {TTFT_ALERT, ERROR_ALERT}
    assert 'model_version="v2"' in rules[TTFT_ALERT]["expr"] and 'model_version="v1"' in rules[TTFT_ALERT]["expr"]
    assert rules[ERROR_ALERT]["labels"] == {"severity": "warning", "model": "qwen", "engine": "vllm"}


def test_the_model_alerts_cover_both_revisions_deployments() -> None:
    rules = {r["alert"]: r for g in render_rules([CANARY])["groups"] for r in g["rules"]}
    assert 'deployment=~"qwen-v1|qwen-v2"' in rules["SlmDeploymentUnavailable"]["expr"]
    assert 'pod=~"(qwen-v1|qwen-v2)-[a-z0-9]+-[a-z0-9]+"' in rules["SlmPodRestarting"]["expr"]


def _bucket(version: str, le: str) -> str:
    return (
        'vllm:time_to_first_token_seconds_bucket{namespace="slm-qwen",model_name="qwen",'
        f'model_version="{version}",le="{le}"}}'
    )


def _finished(version: str, reason: str) -> str:
    return (
        f'vllm:request_success_total{{namespace="slm-qwen",model_name="qwen",model_version="{version}",'
        f'finished_reason="{reason}"}}'
    )


def _promtool(tmp_path: Path, series: list[dict[str, str]], expectations: list[dict[str, Any]]) -> None:
    binary = installed("promtool", "prometheus")
    rules = tmp_path / "canary.rules.yaml"
    rules.write_text(rules_yaml(render_rules([CANARY])), encoding="utf-8")
    checked = subprocess.run([binary, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": expectations}],
    }
    test_file = tmp_path / "canary.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False, width=1000), encoding="utf-8")
    run = subprocess.run(
        [binary, "test", "rules", test_file.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _fired(alert: str) -> list[dict[str, Any]]:
    rule = next(r for r in _canary_rules([CANARY])[canary_group_name(CANARY)] if r["alert"] == alert)
    labels = {**rule["labels"], "namespace": "slm-qwen", "model_name": "qwen"}
    return [{"exp_labels": labels, "exp_annotations": rule["annotations"]}]


def test_promtool_fires_on_a_slower_canary_and_stays_silent_on_an_equal_one(tmp_path: Path) -> None:
    # Per minute: stable answers 60 requests under 0.5 s; the canary answers 6, all between 0.5 s and 1 s (slower),
    # from minute 0 in the first test; in the second both answer under 0.5 s.
    slower = [
        {"series": _bucket("v1", "0.5"), "values": "0+60x40"},
        {"series": _bucket("v1", "1"), "values": "0+60x40"},
        {"series": _bucket("v1", "+Inf"), "values": "0+60x40"},
        {"series": _bucket("v2", "0.5"), "values": "0+0x40"},
        {"series": _bucket("v2", "1"), "values": "0+6x40"},
        {"series": _bucket("v2", "+Inf"), "values": "0+6x40"},
    ]
    _promtool(
        tmp_path,
        slower,
        [
            {"eval_time": "5m", "alertname": TTFT_ALERT, "exp_alerts": []},
            {"eval_time": "30m", "alertname": TTFT_ALERT, "exp_alerts": _fired(TTFT_ALERT)},
            {"eval_time": "30m", "alertname": ERROR_ALERT, "exp_alerts": []},
        ],
    )
    equal = [{**s, "values": "0+6x40"} if "v2" in s["series"] else s for s in slower]
    _promtool(tmp_path, equal, [{"eval_time": "30m", "alertname": TTFT_ALERT, "exp_alerts": []}])


def test_promtool_fires_on_a_failing_canary_even_when_stable_has_no_error_series(tmp_path: Path) -> None:
    # Stable: 60 requests a minute, all stop, and no abort/error series at all. Canary: 10 a minute, 1 error (10 %).
    failing = [
        {"series": _finished("v1", "stop"), "values": "0+60x40"},
        {"series": _finished("v2", "stop"), "values": "0+9x40"},
        {"series": _finished("v2", "error"), "values": "0+1x40"},
    ]
    _promtool(
        tmp_path,
        failing,
        [
            {"eval_time": "5m", "alertname": ERROR_ALERT, "exp_alerts": []},
            {"eval_time": "30m", "alertname": ERROR_ALERT, "exp_alerts": _fired(ERROR_ALERT)},
        ],
    )
    # Within the margin: the canary's 0.5 % errors against stable's 0 % stays silent.
    within = [
        {"series": _finished("v1", "stop"), "values": "0+60x40"},
        {"series": _finished("v2", "stop"), "values": "0+199x40"},
        {"series": _finished("v2", "error"), "values": "0+1x40"},
    ]
    _promtool(tmp_path, within, [{"eval_time": "30m", "alertname": ERROR_ALERT, "exp_alerts": []}])


def test_the_engine_dashboard_compares_revisions_only_for_a_rollout() -> None:
    from infra.monitoring.dashboards import render_dashboards

    def rows(models: list[MonitoredModel]) -> list[str]:
        import json

        dashboard = json.loads(render_dashboards(models)["slm-vllm.json"])
        return [panel["title"] for panel in dashboard["panels"] if panel.get("type") == "row"]

    assert "Canary rollouts, stable against canary" in rows([CANARY, PLAIN])
    assert "Canary rollouts, stable against canary" not in rows([PLAIN])
