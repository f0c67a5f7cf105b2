"""End to end against a real llama-server run with the rendered command, through the official `openai` client."""

from __future__ import annotations

import re

import pytest
from openai import OpenAI

from infra.monitoring.metrics import ENGINE_METRICS
from infra.monitoring.promql import metric_names
from tests.helpers import of_kind
from tests.llamacpp.llama_server_helpers import SERVED_NAME, RunningServer
from tests.real_model import ServesTheRealModel, ask

# One server for the module: its tests run in one xdist worker.
pytestmark = pytest.mark.xdist_group("llamacpp")


@pytest.fixture(scope="module")
def client(llama_server: RunningServer) -> OpenAI:
    return OpenAI(base_url=llama_server.base_url + "/v1", api_key="not-checked", timeout=180, max_retries=0)


def test_runs_the_rendered_command(llama_server: RunningServer) -> None:
    rendered = llama_server.planned.container["args"]
    # Every rendered argument is passed, in order; only the model path, host and port differ.
    local = llama_server.argv[1:]
    assert len(local) == len(rendered)
    differing = {rendered[i - 1] for i, (a, b) in enumerate(zip(local, rendered, strict=True)) if a != b}
    assert differing == {"--model", "--host", "--port"}
    assert rendered[rendered.index("--alias") : rendered.index("--alias") + 2] == ["--alias", SERVED_NAME]
    assert "--metrics" in rendered


class TestLlamaServer(ServesTheRealModel):
    served_name = SERVED_NAME


def test_metrics_the_monitoring_relies_on(llama_server: RunningServer, client: OpenAI) -> None:
    ask(client, SERVED_NAME, "What is two plus two?", max_tokens=8)
    status, text = llama_server.get("/metrics")
    assert status == 200
    exported = {line.split()[0].split("{")[0] for line in text.splitlines() if line and not line.startswith("#")}
    catalogued = {metric.name for metric in ENGINE_METRICS["llamacpp"]}
    assert catalogued <= exported, catalogued - exported
    # What the plan's ServiceMonitor scrapes, and what its alerts and KEDA trigger query.
    resources = llama_server.planned.resources
    # The model's own; the log collector's (in the monitoring namespace) scrapes the collector.
    (monitor,) = [m for m in of_kind(resources, "ServiceMonitor") if m.name != "logs-collector-scrape"]
    assert {e["path"] for e in monitor.inputs["spec"]["endpoints"]} == {"/metrics"}
    (rule,) = of_kind(resources, "PrometheusRule")
    queried = set().union(*(metric_names(r["expr"]) for g in rule.inputs["spec"]["groups"] for r in g["rules"]))
    engine_series = {name for name in queried if name.startswith("llamacpp:")}
    assert engine_series == {"llamacpp:requests_deferred"}
    assert engine_series <= exported
    generated = re.search(r"^llamacpp:tokens_predicted_total (\S+)$", text, re.MULTILINE)
    assert generated is not None and float(generated.group(1)) > 0


def test_health(llama_server: RunningServer) -> None:
    assert llama_server.get("/health") == (200, '{"status":"ok"}')
