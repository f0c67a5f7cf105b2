"""The metric catalogue and the PromQL name extractor both rule and dashboard tests rely on."""

from __future__ import annotations

import pytest

from infra.monitoring.metrics import (
    DCGM_METRICS,
    ENGINE_METRICS,
    ONNX_EXPORTED,
    VLLM_METRICS,
    all_series,
    has_scrape_target,
    series_for,
)
from infra.monitoring.promql import PromQLError, metric_names


def test_vllm_catalogue_has_the_real_names() -> None:
    names = {metric.name for metric in VLLM_METRICS}
    assert "vllm:kv_cache_usage_perc" in names
    assert "vllm:gpu_cache_usage_perc" not in names  # removed in vLLM 0.12
    assert {"vllm:time_to_first_token_seconds_bucket", "vllm:e2e_request_latency_seconds_count"} <= series_for("vllm")
    assert "vllm:time_to_first_token_seconds" not in series_for("vllm")  # a histogram is its _bucket/_sum/_count


def test_engines_export_what_the_catalogue_says() -> None:
    assert {metric.name for metric in ENGINE_METRICS["onnx"]} == set(ONNX_EXPORTED)
    assert "vllm:kv_cache_usage_perc" not in series_for("onnx")
    assert not ENGINE_METRICS["ollama"]
    assert not has_scrape_target("ollama")
    assert "up" not in series_for("ollama")
    assert "up" in series_for("vllm")
    assert not {name for name in series_for("ollama") if name.startswith("vllm:")}
    assert not {metric.name for metric in DCGM_METRICS} & series_for("vllm", gpu=False)
    assert series_for("vllm") <= all_series()


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('rate(vllm:prompt_tokens_total{model_name="a:b", x=~"sum(y)"}[5m])', {"vllm:prompt_tokens_total"}),
        (
            "histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:e2e_request_latency_seconds_bucket[1m])))",
            {"vllm:e2e_request_latency_seconds_bucket"},
        ),
        ("sum(rate(a_total[5m])) by (job) / on (job) group_left (pod) b > bool 0.5", {"a_total", "b"}),
        ("max without (gpu) (DCGM_FI_DEV_GPU_UTIL offset 5m) and up == 0", {"DCGM_FI_DEV_GPU_UTIL", "up"}),
        ('x{namespace=~"$namespace"}[$__rate_interval] unless y[5m:1m]  # comment z', {"x", "y"}),
        ("vector(1) + 1e3 + 0x1f + Inf", set()),
        ('label_replace(q, "dst", "$1", "src", "(.*)")', {"q"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_unbalanced_brackets_are_an_error() -> None:
    with pytest.raises(PromQLError):
        metric_names("sum(rate(x[5m])")
    with pytest.raises(PromQLError):
        metric_names("x{a='b'")
