"""Requests versus use (docs/sizing.md): the PromQL per model, proven with promtool on known series."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from infra.monitoring import MonitoredModel
from infra.monitoring.metrics import series_for
from infra.monitoring.promql import metric_names
from infra.monitoring.rightsizing import rightsizing_queries
from tests.helpers import installed

ROOT = Path(__file__).resolve().parents[2]
MODEL = MonitoredModel("chat", "slm-chat", "vllm", "phi", gpu_count=1)
GI = 2**30
BUSY, QUIET = "chat-7d9f8c6b5d-x2x4z", "chat-7d9f8c6b5d-q8w2p"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _inputs() -> list[dict[str, str]]:
    series = []
    for pod in (BUSY, QUIET):
        for resource, unit, value in (("cpu", "core", 4), ("memory", "byte", 16 * GI)):
            labels = {"namespace": MODEL.namespace, "pod": pod, "container": "vllm", "resource": resource}
            series.append(_series("kube_pod_container_resource_requests", {**labels, "unit": unit}, f"{value}+0x90"))
    cpu = "container_cpu_usage_seconds_total"
    # The busy pod uses 1 core (60 core-seconds a minute), the quiet one 0.25.
    series.append(_series(cpu, {"namespace": MODEL.namespace, "pod": BUSY, "container": "vllm"}, "0+60x90"))
    series.append(_series(cpu, {"namespace": MODEL.namespace, "pod": QUIET, "container": "vllm"}, "0+15x90"))
    # Not the server: the pod's own cgroup and the pause container (cAdvisor reports both), and another model.
    series.append(_series(cpu, {"namespace": MODEL.namespace, "pod": BUSY, "container": ""}, "0+600x90"))
    series.append(_series(cpu, {"namespace": MODEL.namespace, "pod": BUSY, "container": "POD"}, "0+600x90"))
    series.append(
        _series(
            cpu, {"namespace": MODEL.namespace, "pod": "chat-large-5c6d7f8b9-z1z1z", "container": "vllm"}, "0+600x90"
        )
    )
    memory = "container_memory_working_set_bytes"
    # 4 GiB with one 8 GiB peak, 20 minutes before the evaluation.
    peak = f"{4 * GI}+0x49 {8 * GI} {4 * GI}+0x40"
    series.append(_series(memory, {"namespace": MODEL.namespace, "pod": BUSY, "container": "vllm"}, peak))
    series.append(_series(memory, {"namespace": MODEL.namespace, "pod": BUSY, "container": ""}, f"{64 * GI}+0x90"))
    return series


def test_the_queries_name_only_catalogued_series() -> None:
    queries = rightsizing_queries(MODEL)
    for expr in (queries.cpu_ratio, queries.memory_ratio):
        assert metric_names(expr) <= series_for("vllm")
        assert 'pod=~"chat-[a-z0-9]+-[a-z0-9]+"' in expr


def test_promtool_proves_requests_against_use(tmp_path: Path) -> None:
    binary = installed("promtool", "prometheus")
    queries = rightsizing_queries(MODEL, window="1h")
    expected = [
        (queries.cpu_request_cores, 4),
        (queries.cpu_used_p95_cores, 1),
        (queries.cpu_ratio, 0.25),
        (queries.memory_request_bytes, 16 * GI),
        (queries.memory_used_max_bytes, 8 * GI),
        (queries.memory_ratio, 0.5),
    ]
    (tmp_path / "none.rules.yaml").write_text("groups: []\n", encoding="utf-8")
    test = {
        "rule_files": ["none.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _inputs(),
                "promql_expr_test": [
                    {"expr": expr, "eval_time": "70m", "exp_samples": [{"labels": "{}", "value": value}]}
                    for expr, value in expected
                ],
            }
        ],
    }
    (tmp_path / "rightsizing.test.yaml").write_text(yaml.safe_dump(test, sort_keys=False, width=1000), encoding="utf-8")
    result = subprocess.run(
        [binary, "test", "rules", "rightsizing.test.yaml"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_show_the_queries_as_rendered() -> None:
    """docs/sizing.md shows the queries of an example model exactly as this module renders them."""
    text = (ROOT / "docs" / "sizing.md").read_text(encoding="utf-8")
    example = rightsizing_queries(MonitoredModel("phi4-mini", "slm-phi4-mini", "vllm", "phi-4-mini", gpu_count=1))
    for query in (example.cpu_ratio, example.memory_ratio):
        assert query in text
