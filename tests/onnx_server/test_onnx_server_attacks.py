"""End-to-end: issue 25's attacks, each reproduced on 127.0.0.1 against the tiny model, in bounded time.

- a json_schema with 600-2000 optional properties once wedged og.Engine for good (every later request hung,
  /health stayed 200): now refused with a 400 naming the limit; past the limits it fails alone on
  og.Generator; and when og.Engine does fail (guided batching on, limits raised: the real wedge), the batch gets
  503 + Retry-After, the engine is rebuilt and serves again, or /health turns 503 once rebuilds are used up;
- a long guided request no longer holds later arrivals until it ends;
- huge stop strings (16 x 250,000 characters) no longer stall other clients' streams;
- 40 slow 4 MiB bodies no longer grow the server by their size; a normal request still gets 200;
- the smaller items: deep nesting, `x-guidance`, the same validation on both paths.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from onnx_server_helpers import ANSWER, MODEL_NAME, TINY_MODEL, RunningServer, require, sample

require("onnxruntime_genai", "fastapi", "uvicorn", "prometheus_client", "httpx")

import httpx  # noqa: E402

HELLO = [{"role": "user", "content": "Say hello."}]
LABELS = {"model_name": MODEL_NAME}
WEDGE_PROPERTIES = 700  # 600 already fails: llguidance's parse row passes 2,000 items on the first token
RAISED_LIMITS = {"SLM_ONNX_MAX_SCHEMA_PROPERTIES": "5000", "SLM_ONNX_MAX_SCHEMA_BYTES": "1000000"}


def wedge_format(properties: int = WEDGE_PROPERTIES) -> dict[str, Any]:
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(properties)}}
    return {"type": "json_schema", "json_schema": {"name": "wide", "schema": schema}}


def chat(server: RunningServer, timeout: float = 30.0, **fields: Any) -> httpx.Response:
    body = {"messages": HELLO, "temperature": 0, **fields}
    return httpx.post(f"{server.base}/v1/chat/completions", json=body, timeout=timeout)


def rss_bytes(server: RunningServer) -> int:
    with open(f"/proc/{server.process.pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(start_server: type[RunningServer]) -> Iterator[RunningServer]:
    running = start_server({"SLM_ONNX_TEST_TOKEN_DELAY_SECONDS": "0.02", "SLM_ONNX_MAX_QUEUE": "16"})
    running.wait_ready()
    yield running


# --- 1. the wedge ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seeded", [False, True])
def test_a_schema_beyond_the_limits_is_a_400_naming_the_limit(server: RunningServer, seeded: bool) -> None:
    extra = {"seed": 7, "temperature": 0.5} if seeded else {}
    response = chat(server, response_format=wedge_format(), max_tokens=20, **extra)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "schema_too_complex" and "at most 256" in error["message"], error
    assert error["param"] == "response_format.json_schema.schema"
    assert chat(server, max_tokens=20).json()["choices"][0]["message"]["content"] == ANSWER
    assert httpx.get(f"{server.base}/health").status_code == 200
    assert sample(server.metrics(), "slm_onnx:requests_rejected_total", **LABELS, reason="schema_limit") >= 1


def test_past_the_limits_a_grammar_failure_stays_with_its_request(start_server: type[RunningServer]) -> None:
    running = start_server(RAISED_LIMITS)
    running.wait_ready()
    for _ in range(3):
        response = chat(running, response_format=wedge_format(), max_tokens=20)
        assert response.status_code == 400, response.text
        assert "too complex for the grammar parser" in response.json()["error"]["message"]
        assert chat(running, max_tokens=20).json()["choices"][0]["message"]["content"] == ANSWER
    assert httpx.get(f"{running.base}/health").status_code == 200
    assert sample(running.metrics(), "slm_onnx:engine_rebuilds_total", **LABELS) == 0
    running.stop()


def test_the_engine_wedge_is_answered_with_503_and_the_engine_rebuilt(start_server: type[RunningServer]) -> None:
    # Guided requests batched in og.Engine and the schema limits raised: the wedge, for real.
    running = start_server({**RAISED_LIMITS, "SLM_ONNX_GUIDED_BATCHING": "true",
                            "SLM_ONNX_TEST_TOKEN_DELAY_SECONDS": "0.01"})  # fmt: skip
    running.wait_ready()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # the two land in one batch (the gather window): the plain one is in flight when the engine fails
        in_flight = pool.submit(chat, running, max_tokens=50, ignore_eos=True)
        time.sleep(0.002)
        wedge = pool.submit(chat, running, response_format=wedge_format(), max_tokens=20)
        answers = [in_flight.result(), wedge.result()]
    assert 503 in [a.status_code for a in answers], [a.text for a in answers]
    for answer in answers:
        assert answer.status_code in (200, 503), answer.text
        if answer.status_code == 503:
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["error"]["code"] == "engine_unavailable"
    # More requests than batch + queue: none hangs, none is refused with 429 (tickets were released).
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        later = list(pool.map(lambda _: chat(running, max_tokens=20, timeout=20), range(24)))
    assert [r.status_code for r in later] == [200] * 24
    assert httpx.get(f"{running.base}/health").status_code == 200
    metrics = running.metrics()
    assert sample(metrics, "slm_onnx:engine_rebuilds_total", **LABELS) == 1
    assert sample(metrics, "slm_onnx:engine_healthy", **LABELS) == 1
    running.stop()


def test_beyond_its_rebuilds_the_engine_turns_health_503(start_server: type[RunningServer]) -> None:
    running = start_server({**RAISED_LIMITS, "SLM_ONNX_GUIDED_BATCHING": "true", "SLM_ONNX_ENGINE_MAX_REBUILDS": "0"})
    running.wait_ready()
    assert chat(running, response_format=wedge_format(), max_tokens=20).status_code == 503
    health = httpx.get(f"{running.base}/health")
    assert health.status_code == 503 and health.json()["status"] == "error", health.text
    started = time.monotonic()
    refused = chat(running, max_tokens=20, timeout=10)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert time.monotonic() - started < 5  # answered, not hung
    assert sample(running.metrics(), "slm_onnx:engine_healthy", **LABELS) == 0
    running.stop()


# --- 2. guided requests do not hold later arrivals ---------------------------------------------------------------


def _behind(server: RunningServer, first: dict[str, Any]) -> float:
    """Seconds a short plain request takes when it arrives 0.3 s after `first` (a long request) started."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        long = pool.submit(chat, server, max_tokens=120, ignore_eos=True, **first)
        time.sleep(0.3)
        started = time.monotonic()
        short = chat(server, max_tokens=5)
        took = time.monotonic() - started
        assert short.status_code == 200 and long.result().status_code == 200
    return took


def test_a_request_behind_a_guided_one_waits_no_longer_than_behind_a_plain_one(server: RunningServer) -> None:
    behind_plain = min(_behind(server, {}) for _ in range(2))
    behind_guided = min(_behind(server, {"response_format": {"type": "json_object"}}) for _ in range(2))
    # Before: 4.2-4.9 s behind a guided request (its whole generation), 0.35 s behind a plain one.
    assert behind_guided <= max(2 * behind_plain, 0.6), (behind_guided, behind_plain)


# --- 3. inputs as large as the limits allow do not stall other streams ------------------------------------------


def longest_prompt() -> str:
    """The longest prompt the server tokenises (context x the longest vocabulary entry) before refusing it."""
    tokenizer = json.loads((TINY_MODEL / "tokenizer.json").read_text(encoding="utf-8"))
    longest = max(len(piece) for piece in tokenizer["model"]["vocab"])
    context = json.loads((TINY_MODEL / "genai_config.json").read_text(encoding="utf-8"))["model"]["context_length"]
    chars = context * longest
    return ("word " * (chars // 5 + 1))[:chars]


def _stream_gaps(server: RunningServer, tokens: int) -> list[float]:
    body = {"messages": HELLO, "temperature": 0, "max_tokens": tokens, "ignore_eos": True, "stream": True}
    stamps: list[float] = []
    with httpx.stream("POST", f"{server.base}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content":"' in line:
                stamps.append(time.monotonic())
    return [b - a for a, b in itertools.pairwise(stamps)]


def test_the_largest_inputs_do_not_stall_another_clients_stream(server: RunningServer) -> None:
    stops = ["\u00e9" + "s" * 249_999 for _ in range(16)]  # 4,000,000 characters: under the 4 MiB body limit
    attacks: list[dict[str, Any]] = [
        {"messages": HELLO, "max_tokens": 3, "stop": stops},
        {"messages": HELLO, "max_tokens": 3, "seed": 1, "temperature": 0.7, "stop": stops},
        {"messages": [{"role": "user", "content": longest_prompt()}], "max_tokens": 3},  # tokenised, then 400
        {"messages": HELLO, "max_tokens": 3, "response_format": wedge_format(250)},
    ]
    done = threading.Event()
    statuses: list[int] = []

    def attack(body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        assert len(raw) <= 4 * 1024 * 1024
        while not done.is_set():
            try:
                statuses.append(httpx.post(f"{server.base}/v1/chat/completions", content=raw, timeout=60,
                                           headers={"Content-Type": "application/json"}).status_code)  # fmt: skip
            except httpx.TransportError:
                statuses.append(0)

    threads = [threading.Thread(target=attack, args=(body,)) for body in attacks]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        # Two streams, one after the other, both under attack: on this shared 2-core machine (load 8-13 from
        # other builds) one descheduling of the server can pass 0.5 s by itself, so the better stream must stay
        # within 0.5 s and neither may stall for a second (before: 1.7 s here, 1-3.8 s in the issue, each time).
        longest = sorted(max(_stream_gaps(server, tokens=150)) for _ in range(2))
    finally:
        done.set()
        for thread in threads:
            thread.join(60)
    assert longest[0] <= 0.5 and longest[1] < 1.0, longest
    assert set(statuses) <= {200, 400, 429} and 200 in statuses, statuses


# --- 4. bodies are admitted before they are buffered ---------------------------------------------------------


def test_forty_slow_4_mib_bodies_do_not_grow_the_server_by_their_size(server: RunningServer) -> None:
    size = 4 * 1024 * 1024
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()  # fmt: skip
    chunk = b" " * (256 * 1024)
    before = rss_bytes(server)
    peak = before
    sockets: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(40):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(head)
            sockets.append(sock)
        deadline = time.monotonic() + 2.5  # under the 30 s body deadline: the bodies stay unfinished
        while time.monotonic() < deadline:
            for sock in list(sockets):
                try:
                    sock.sendall(chunk)  # slowly: a quarter MiB per connection per round, never all 4 MiB
                except OSError:  # refused (429) and closed by the server
                    sockets.remove(sock)
                    refused += 1
            peak = max(peak, rss_bytes(server))
            time.sleep(0.1)
        normal = httpx.post(f"{server.base}/v1/completions",
                            json={"prompt": "hi", "max_tokens": 3, "temperature": 0}, timeout=30)  # fmt: skip
        peak = max(peak, rss_bytes(server))
    finally:
        for sock in sockets:
            sock.close()
    assert normal.status_code == 200, normal.text
    assert refused >= 30  # the budget (16 MiB) holds four 4 MiB bodies; the rest are refused before reading
    assert peak - before <= 64 * 1024 * 1024, (peak - before) / 2**20
    assert sample(server.metrics(), "slm_onnx:requests_rejected_total", **LABELS, reason="bodies_in_flight") >= 30


# --- 5. the smaller items ------------------------------------------------------------------------------------


def test_deep_nesting_gets_a_message_that_says_so(server: RunningServer) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(150):
        deep = {"type": "object", "properties": {"a": deep}}
    response = chat(server, response_format={"type": "json_schema", "json_schema": {"name": "d", "schema": deep}})
    assert response.status_code == 400 and response.json()["error"]["code"] == "nesting_too_deep", response.text
    for _ in range(150 - 20):  # 20 levels: 41 levels of JSON
        deep = deep["properties"]["a"]
    response = chat(server, response_format={"type": "json_schema", "json_schema": {"name": "d", "schema": deep}})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "schema_too_deep" and "at most 32" in error["message"]


def schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


@pytest.mark.parametrize("seeded", [False, True])
def test_x_guidance_is_allow_listed_on_both_paths(server: RunningServer, seeded: bool) -> None:
    extra = {"seed": 3, "temperature": 0.5} if seeded else {}
    schema = {"type": "object", "x-guidance": {"whitespace_pattern": "[ ]*", "lenient": True}}
    response = chat(server, max_tokens=5, response_format=schema_format(schema), **extra)
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_parameter"
    assert "whitespace_pattern" in response.json()["error"]["message"]
    schema = {"type": "object", "x-guidance": {"whitespace_flexible": False}}
    response = chat(server, max_tokens=5, response_format=schema_format(schema), **extra)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("field", ["repetition_penalty", "top_p", "temperature"])
def test_a_float_too_small_for_float32_is_the_same_400_on_both_paths(server: RunningServer, field: str) -> None:
    for extra in ({}, {"seed": 5}):
        body = {"temperature": 0.5, **extra, field: 1e-50}
        response = chat(server, max_tokens=5, **body)
        assert response.status_code == 400, (extra, response.text)
        assert response.json()["error"]["param"] == field
