"""A real Prometheus (Debian's ``prometheus`` binary) loads the rendered rules and fires an alert.

The test serves a fake vLLM ``/metrics`` on 127.0.0.1 with the catalogue's metric names (a long queue,
everything else healthy), starts Prometheus on a free loopback port with a 1 s scrape and evaluation
interval and ``queueFor: 1s``, and reads ``/api/v1/rules`` and ``/api/v1/alerts``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.monitoring import AlertThresholds, MonitoredModel, render_rules, rules_yaml
from infra.monitoring.metrics import VLLM_METRICS
from infra.processes import stop_process
from tests.helpers import installed

MODEL = MonitoredModel(
    "chat", "slm-chat", "vllm", "microsoft/Phi-4-mini-instruct", gpu_count=1, gpu_memory_reserved=0.9
)
POD = "chat-7d9f8c6b5d-x2x4z"
WAITING = 42
THRESHOLDS = AlertThresholds(queue_depth=5, queue_for="1s")
DEADLINE_SECONDS = 20


def exposition() -> str:
    """Every vLLM metric in the text format: healthy values, except 42 requests waiting."""
    labels = f'model_name="{MODEL.served_model_name}"'
    lines: list[str] = []
    for metric in VLLM_METRICS:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        if metric.kind == "histogram":
            for le, count in (("0.1", 8), ("1", 10), ("+Inf", 10)):
                lines.append(f'{metric.name}_bucket{{{labels},le="{le}"}} {count}')
            lines.append(f"{metric.name}_sum{{{labels}}} 1.5")
            lines.append(f"{metric.name}_count{{{labels}}} 10")
        elif metric.name == "vllm:request_success_total":
            lines.append(f'{metric.name}{{{labels},finished_reason="stop"}} 10')
        elif metric.name == "vllm:num_requests_waiting":
            lines.append(f"{metric.name}{{{labels}}} {WAITING}")
        elif metric.name == "vllm:kv_cache_usage_perc":
            lines.append(f"{metric.name}{{{labels}}} 0.25")
        else:
            lines.append(f"{metric.name}{{{labels}}} {0 if metric.kind == 'counter' else 1}")
    return "\n".join(lines) + "\n"


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = exposition().encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def metrics_endpoint() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_binary() -> str:
    return installed("prometheus", "prometheus")


def get(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}{path}", timeout=2) as response:
        return json.loads(response.read())


def wait_for(what: str, check: Callable[[], Any], deadline: float, process: subprocess.Popen[str]) -> Any:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode} while waiting for {what}")
        try:
            result = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_prometheus_loads_the_rules_and_fires_the_queue_alert(tmp_path: Path, metrics_endpoint: int) -> None:
    binary = prometheus_binary()
    spec = render_rules([MODEL], THRESHOLDS)
    (tmp_path / "rules.yaml").write_text(rules_yaml(spec), encoding="utf-8")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [
            {
                "job_name": MODEL.name,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{metrics_endpoint}"],
                        # What the ServiceMonitor's relabelling adds in a cluster.
                        "labels": {"namespace": MODEL.namespace, "pod": POD},
                    }
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS

        def ready() -> bool:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                return bool(response.status == 200)

        wait_for("readiness", ready, deadline, process)

        expected = {rule["alert"] for rule in spec["groups"][0]["rules"]}

        def evaluated_rules() -> list[dict[str, Any]] | None:
            groups = get(base, "/api/v1/rules")["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None

        rules = wait_for("the first rule evaluation", evaluated_rules, deadline, process)
        assert {rule["name"] for rule in rules} == expected
        assert [rule for rule in rules if rule["health"] != "ok"] == []

        def queue_alert() -> dict[str, Any] | None:
            alerts = get(base, "/api/v1/alerts")["data"]["alerts"]
            matches = [a for a in alerts if a["labels"]["alertname"] == "SlmQueueDepthHigh"]
            return matches[0] if matches else None

        alert = wait_for("SlmQueueDepthHigh", queue_alert, deadline, process)
        assert alert["state"] in ("pending", "firing")
        assert alert["labels"] == {
            "alertname": "SlmQueueDepthHigh",
            "severity": "warning",
            "model": MODEL.name,
            "engine": "vllm",
            "namespace": MODEL.namespace,
            "model_name": MODEL.served_model_name,
        }
        assert f"has {WAITING} requests waiting" in alert["annotations"]["description"]

        # Everything else is healthy: the scrape works, and no other alert is even pending.
        up = get(base, f'/api/v1/query?query=up{{namespace="{MODEL.namespace}"}}')["data"]["result"]
        assert [sample["value"][1] for sample in up] == ["1"]
        others = [a["labels"]["alertname"] for a in get(base, "/api/v1/alerts")["data"]["alerts"]]
        assert set(others) == {"SlmQueueDepthHigh"}
    except AssertionError:
        log.flush()
        print((tmp_path / "prometheus.log").read_text(encoding="utf-8")[-4000:])
        raise
    finally:
        stop_process(process)
        log.close()
