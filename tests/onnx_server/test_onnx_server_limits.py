"""End-to-end limits: the bounded queue (429 + Retry-After) and client disconnects stopping generation.

The server generates slowly on purpose (SLM_ONNX_TEST_TOKEN_DELAY_SECONDS), one request at a time with one
waiting, so a small, bounded burst on 127.0.0.1 fills it deterministically.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from onnx_server_helpers import MODEL_NAME, RunningServer, require, sample

require("onnxruntime_genai", "fastapi", "uvicorn", "prometheus_client", "httpx")

import httpx  # noqa: E402

TOKEN_DELAY = 0.1
LABELS = {"model_name": MODEL_NAME}


@pytest.fixture(scope="module")
def server(start_server: type[RunningServer]) -> Iterator[RunningServer]:
    running = start_server(
        {
            "SLM_ONNX_MAX_CONCURRENCY": "1",
            "SLM_ONNX_MAX_QUEUE": "1",
            "SLM_ONNX_RETRY_AFTER_SECONDS": "3",
            "SLM_ONNX_TEST_TOKEN_DELAY_SECONDS": str(TOKEN_DELAY),
        }
    )
    running.wait_ready()
    yield running


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def gauge(server: RunningServer, name: str) -> float:
    return sample(server.metrics(), name, **LABELS)


def test_burst_beyond_the_queue_gets_429_with_retry_after(server: RunningServer) -> None:
    body = {"model": MODEL_NAME, "prompt": "x", "max_tokens": 20, "ignore_eos": True}  # about 2 s each
    results: dict[str, int] = {}

    def call(name: str) -> None:
        results[name] = httpx.post(f"{server.base}/v1/completions", json=body, timeout=20.0).status_code

    first = threading.Thread(target=call, args=("first",))
    first.start()
    wait_for(lambda: gauge(server, "vllm:num_requests_running") == 1)
    second = threading.Thread(target=call, args=("second",))
    second.start()
    wait_for(lambda: gauge(server, "vllm:num_requests_waiting") == 1)

    # A 429 needs no generation, but a loaded 2-core machine may answer slowly: the bound is generous.
    rejected = [httpx.post(f"{server.base}/v1/completions", json=body, timeout=20.0) for _ in range(4)]
    for response in rejected:
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        error = response.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "queue_full"
    first.join(timeout=20)
    second.join(timeout=20)
    assert results == {"first": 200, "second": 200}
    after = server.metrics()
    assert sample(after, "slm_onnx:requests_rejected_total", **LABELS, reason="queue_full") == 4
    assert sample(after, "vllm:num_requests_running", **LABELS) == 0
    assert sample(after, "vllm:num_requests_waiting", **LABELS) == 0
    assert sample(after, "vllm:request_queue_time_seconds_sum", **LABELS) >= 0.3  # the second one waited


def test_stream_disconnect_stops_generation(server: RunningServer) -> None:
    before = server.metrics()
    body = {"model": MODEL_NAME, "prompt": "x", "max_tokens": 200, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{server.base}/v1/completions", json=body, timeout=20.0) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        received = [next(lines) for _ in range(3)]
    assert received[0].startswith("data: ")
    started = time.monotonic()
    wait_for(lambda: gauge(server, "vllm:num_requests_running") == 0, timeout=5.0)
    assert time.monotonic() - started < 3.0  # 200 tokens would take 20 s
    after = server.metrics()
    assert sample(after, "vllm:request_success_total", **LABELS, finished_reason="abort") == (
        sample(before, "vllm:request_success_total", **LABELS, finished_reason="abort") + 1
    )
    generated = sample(after, "vllm:generation_tokens_total", **LABELS) - sample(
        before, "vllm:generation_tokens_total", **LABELS
    )
    assert generated < 40


def test_non_streaming_disconnect_stops_generation(server: RunningServer) -> None:
    before = server.metrics()
    body = {"model": MODEL_NAME, "prompt": "x", "max_tokens": 200, "ignore_eos": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base}/v1/completions", json=body, timeout=0.5)
    wait_for(lambda: gauge(server, "vllm:num_requests_running") == 0, timeout=5.0)
    after = server.metrics()
    assert sample(after, "vllm:request_success_total", **LABELS, finished_reason="abort") == (
        sample(before, "vllm:request_success_total", **LABELS, finished_reason="abort") + 1
    )
    # The server is free again: a new request is served at once.
    response = httpx.post(f"{server.base}/v1/completions", json={"prompt": "x", "max_tokens": 2}, timeout=10.0)
    assert response.status_code == 200
