"""The endpoint picker's alert (models routed through an InferencePool): rendered only for them, critical when
the gateway fails closed, proven by promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.monitoring import MonitoredModel, render_rules, rules_yaml
from infra.monitoring.picker_rules import ALERT, picker_group_name
from tests.conftest import planned
from tests.helpers import installed

POOLED = MonitoredModel("qwen", "slm-qwen", "vllm", "qwen", gpu_count=1, endpoint_picker="FailClose")
OPEN = MonitoredModel("phi", "slm-phi", "vllm", "phi", gpu_count=1, endpoint_picker="FailOpen")
PLAIN = MonitoredModel("gemma", "slm-gemma", "vllm", "gemma", gpu_count=1)


def _picker_alerts(models: list[MonitoredModel]) -> dict[str, dict[str, Any]]:
    groups = render_rules(models)["groups"]
    return {g["name"]: g["rules"][0] for g in groups if g["name"].endswith(".endpoint-picker")}


def test_only_pooled_models_get_the_alert_and_fail_close_is_critical() -> None:
    alerts = _picker_alerts([POOLED, OPEN, PLAIN])
    assert set(alerts) == {picker_group_name(POOLED), picker_group_name(OPEN)}
    closed, opened = alerts[picker_group_name(POOLED)], alerts[picker_group_name(OPEN)]
    assert closed["labels"] == {"severity": "critical", "model": "qwen", "engine": "vllm"}
    assert opened["labels"]["severity"] == "warning"
    assert 'deployment="qwen-epp"' in str(closed["expr"])
    assert str(closed["annotations"]["runbook_url"]).endswith("#slmendpointpickerunavailable")


def test_the_staging_stack_alerts_on_its_picker() -> None:
    rules = next(r for r in planned("staging", True).run.resources if r.type.endswith(":PrometheusRule"))
    names = [group["name"] for group in rules.inputs["spec"]["groups"]]
    assert "slm-deploy.slm-qwen3-4b.qwen3-4b.endpoint-picker" in names
    assert not [name for name in names if name.startswith("slm-deploy.slm-phi4-mini.") and "picker" in name]


def test_promtool_fires_the_alert_only_when_no_picker_is_available(tmp_path: Path) -> None:
    binary = installed("promtool", "prometheus")
    rules = tmp_path / "picker.rules.yaml"
    rules.write_text(rules_yaml(render_rules([POOLED])), encoding="utf-8")
    checked = subprocess.run([binary, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    annotations = _picker_alerts([POOLED])[picker_group_name(POOLED)]["annotations"]
    available = 'kube_deployment_status_replicas_available{namespace="slm-qwen",deployment="qwen-epp"}'
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                # The picker's only replica goes away at minute 10: pending for 5 minutes, then firing.
                "interval": "1m",
                "input_series": [{"series": available, "values": "1x10 0x20"}],
                "alert_rule_test": [
                    {"eval_time": "13m", "alertname": ALERT, "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": ALERT,
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "model": "qwen",
                                    "engine": "vllm",
                                    "namespace": "slm-qwen",
                                    "deployment": "qwen-epp",
                                },
                                "exp_annotations": annotations,
                            }
                        ],
                    },
                ],
            },
            {
                # A short gap during the picker's own rollout (Recreate) stays silent.
                "interval": "1m",
                "input_series": [{"series": available, "values": "1x10 0x2 1x20"}],
                "alert_rule_test": [{"eval_time": "20m", "alertname": ALERT, "exp_alerts": []}],
            },
        ],
    }
    test_file = tmp_path / "picker.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False, width=1000), encoding="utf-8")
    run = subprocess.run(
        [binary, "test", "rules", test_file.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
