"""Alert rules: the right rules per engine, valid for promtool, and each proven by promtool unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitoring_cases import (
    EVAL_MINUTES,
    EVALUATION_INTERVAL,
    EXPECTED_ALERTS,
    EXPORTED_LABELS,
    MODELS,
    SCENARIOS,
    TIGHT,
    rule_tests,
)

from infra.config.monitoring import duration_seconds
from infra.monitoring import ALERTS, AlertThresholds, MonitoredModel, MonitoringOptions, render_rules, rules_yaml
from infra.monitoring.metrics import all_series, series_for
from infra.monitoring.rules import rule_metrics, rule_template
from infra.templating import TEMPLATES
from tests.helpers import installed

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
SETTINGS = {
    "defaults": (AlertThresholds(), MonitoringOptions()),
    "tight-exported-labels": (TIGHT, EXPORTED_LABELS),
}


def promtool() -> str:
    return installed("promtool", "prometheus")


def alerts_of(spec: dict[str, Any]) -> list[str]:
    return [rule["alert"] for group in spec["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_each_engine_gets_only_the_alerts_it_can_fire(kind: str) -> None:
    model = MODELS[kind]
    spec = render_rules([model])
    assert set(alerts_of(spec)) == EXPECTED_ALERTS[kind]
    assert len(alerts_of(spec)) == len(set(alerts_of(spec)))
    available = series_for(model.engine, gpu=model.gpu_count > 0)
    for rule in spec["groups"][0]["rules"]:
        assert rule_metrics(rule) <= available, rule["alert"]


def test_every_alert_has_a_template_a_scenario_and_is_used() -> None:
    # A rule removed without its test (or added without one) fails here.
    assert set(SCENARIOS) == set(ALERTS)
    assert {alert for alerts in EXPECTED_ALERTS.values() for alert in alerts} == set(ALERTS)
    for alert in ALERTS:
        assert (TEMPLATES / rule_template(alert)).is_file(), alert
    on_disk = {path.name.removesuffix(".yaml.j2") for path in (TEMPLATES / "monitoring" / "rules").glob("*.yaml.j2")}
    assert on_disk == set(ALERTS)


def test_rules_name_only_catalogued_series_and_never_the_removed_cache_metric() -> None:
    spec = render_rules(list(MODELS.values()))
    for group in spec["groups"]:
        for rule in group["rules"]:
            assert rule_metrics(rule) <= all_series()
            assert "gpu_cache_usage_perc" not in rule["expr"]


def test_rule_shape_labels_and_runbook_links() -> None:
    headings = {
        line.removeprefix("## ").strip().lower()
        for line in RUNBOOKS.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    for kind, model in MODELS.items():
        for rule in render_rules([model])["groups"][0]["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["labels"]["model"] == model.name
            assert rule["labels"]["engine"] == model.engine
            assert duration_seconds(rule["for"]) >= 0
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], kind
            path, anchor = rule["annotations"]["runbook_url"].split("#")
            assert path == "docs/runbooks.md"
            assert anchor in headings, f"docs/runbooks.md has no section '## {rule['alert']}'"


def test_thresholds_and_options_reach_the_rules() -> None:
    model = MODELS["vllm-gpu"]
    rules = {rule["alert"]: rule for rule in render_rules([model], TIGHT, EXPORTED_LABELS)["groups"][0]["rules"]}
    assert rules["SlmQueueDepthHigh"]["expr"].endswith("> 3")
    assert rules["SlmQueueDepthHigh"]["for"] == "30s"
    assert "[2m]" in rules["SlmTimeToFirstTokenHigh"]["expr"]
    assert 'exported_namespace="slm-chat"' in rules["SlmGpuMemoryNearFull"]["expr"]
    assert rules["SlmPodRestarting"]["annotations"]["runbook_url"].endswith("runbooks.md#slmpodrestarting")


def test_gpu_threshold_below_the_engines_reservation_is_refused() -> None:
    with pytest.raises(ValueError, match="reserves up front"):
        render_rules([MODELS["vllm-gpu"]], AlertThresholds(gpu_memory_ratio=0.85))


def test_duplicate_models_and_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        render_rules([MODELS["onnx-cpu"], MODELS["onnx-cpu"]])
    with pytest.raises(ValueError, match="DNS label"):
        MonitoredModel("Chat", "slm-chat", "vllm", "x")
    with pytest.raises(ValueError, match="unknown engine"):
        MonitoredModel("chat", "slm-chat", "tgi", "x")  # type: ignore[arg-type]


def test_thresholds_are_camel_case_config_with_validated_durations() -> None:
    thresholds = AlertThresholds.model_validate({"ttftP95Seconds": 1.5, "queueFor": "90s", "restartsWindow": "1h"})
    assert thresholds.ttft_p95_seconds == 1.5
    with pytest.raises(ValueError, match="Prometheus duration"):
        AlertThresholds.model_validate({"queueFor": "five minutes"})
    with pytest.raises(ValueError):
        AlertThresholds.model_validate({"kvCacheRatio": 1.5})
    with pytest.raises(ValueError):
        AlertThresholds.model_validate({"unknownKey": 1})
    for name, info in AlertThresholds.model_fields.items():
        assert info.description, name


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_promtool_check_rules_passes(setting: str, tmp_path: Path) -> None:
    binary = promtool()
    thresholds, options = SETTINGS[setting]
    stack_file = tmp_path / "stack.rules.yaml"
    stack_file.write_text(rules_yaml(render_rules(list(MODELS.values()), thresholds, options)), encoding="utf-8")
    files = [stack_file]
    for kind, model in MODELS.items():
        path = tmp_path / f"{kind}.rules.yaml"
        path.write_text(rules_yaml(render_rules([model], thresholds, options)), encoding="utf-8")
        files.append(path)
    result = subprocess.run([binary, "check", "rules", *map(str, files)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_promtool_unit_tests_prove_each_alert(setting: str, tmp_path: Path) -> None:
    binary = promtool()
    thresholds, options = SETTINGS[setting]
    longest = max(
        duration_seconds(getattr(thresholds, name))
        for name in AlertThresholds.model_fields
        if name.endswith(("_for", "_window"))
    )
    assert longest + 10 * 60 < EVAL_MINUTES * 60, "the scenarios' series are too short for these durations"
    test_files = []
    proven: set[str] = set()
    for kind, model in MODELS.items():
        spec = render_rules([model], thresholds, options)
        rules_file = tmp_path / f"{kind}.rules.yaml"
        rules_file.write_text(rules_yaml(spec), encoding="utf-8")
        tests = rule_tests(model, spec["groups"][0], thresholds, options)
        proven |= {case["alertname"] for case in tests[0]["alert_rule_test"] if case["exp_alerts"]}
        test_file = tmp_path / f"{kind}.test.yaml"
        test_file.write_text(
            yaml.safe_dump(
                {"rule_files": [rules_file.name], "evaluation_interval": EVALUATION_INTERVAL, "tests": tests},
                sort_keys=False,
                width=1000,
            ),
            encoding="utf-8",
        )
        test_files.append(test_file)
    assert proven == set(ALERTS)
    # One promtool per file, side by side: each test group costs promtool a fresh database.
    runs = [
        subprocess.Popen(
            [binary, "test", "rules", path.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
        for path in test_files
    ]
    for path, run in zip(test_files, runs, strict=True):
        output, _ = run.communicate(timeout=60)
        assert run.returncode == 0, f"{path.name}:\n{output[-8000:]}"
        assert "SUCCESS" in output


def test_models_come_from_the_stack_config() -> None:
    from infra.config.model import ModelConfig

    vllm = ModelConfig.model_validate(
        {
            "name": "chat",
            "engine": "vllm",
            "modelId": "microsoft/Phi-4-mini-instruct",
            "servedModelName": "phi",
            "gpu": {"count": 1},
            "vllm": {"gpuMemoryUtilization": 0.85},
        }
    )
    assert MonitoredModel.from_config(vllm) == MonitoredModel(
        "chat", "slm-chat", "vllm", "phi", gpu_count=1, gpu_memory_reserved=0.85
    )
    ollama = ModelConfig.model_validate(
        {"name": "llama", "engine": "ollama", "modelId": "llama3.2:1b", "namespace": "ml"}
    )
    assert MonitoredModel.from_config(ollama) == MonitoredModel("llama", "ml", "ollama", "llama")


def test_odd_served_model_names_are_quoted(tmp_path: Path) -> None:
    binary = promtool()
    model = MonitoredModel("odd", "slm-odd", "vllm", 'org/model:v1.2 "beta" \\ x', gpu_count=1)
    path = tmp_path / "odd.rules.yaml"
    path.write_text(rules_yaml(render_rules([model])), encoding="utf-8")
    result = subprocess.run([binary, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert render_rules([]) == {"groups": []}
