"""End-to-end: batching under concurrency, the API's refusals, structured output and hostile input.

One server: og.Engine batches of 4, API keys from a JSON keys file (as the entry point's Secret), small
header and body read timeouts, a 12 MB body limit.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from onnx_server_helpers import ANSWER, MODEL_NAME, RunningServer, require, sample

require("onnxruntime_genai", "fastapi", "uvicorn", "prometheus_client", "openai", "httpx")

import httpx  # noqa: E402
import openai  # noqa: E402

KEYS = {"team-a": "key-of-team-a-0123456789", "team-b": "key-of-team-b-0123456789"}
AUTH = {"Authorization": f"Bearer {KEYS['team-a']}"}
HELLO = [{"role": "user", "content": "Say hello."}]
LABELS = {"model_name": MODEL_NAME}
MAX_BODY = 12 * 1024 * 1024


@pytest.fixture(scope="module")
def server(start_server: type[RunningServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    keys = tmp_path_factory.mktemp("secret") / "api-keys.json"
    keys.write_text(json.dumps(KEYS))
    running = start_server(
        {
            "SLM_ONNX_API_KEYS_FILE": str(keys),
            "SLM_ONNX_MAX_BATCH_SIZE": "4",
            "SLM_ONNX_MAX_QUEUE": "16",
            "SLM_ONNX_MAX_BODY_BYTES": str(MAX_BODY),
            "SLM_ONNX_HEADER_TIMEOUT_SECONDS": "1",
            "SLM_ONNX_BODY_TIMEOUT_SECONDS": "3",
            # Slow enough that concurrent requests overlap, fast enough for a short test.
            "SLM_ONNX_TEST_TOKEN_DELAY_SECONDS": "0.01",
        }
    )
    running.wait_ready()
    yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=KEYS["team-b"], max_retries=0, timeout=30.0)


def post(server: RunningServer, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base}{path}", json=body, headers=AUTH, timeout=30.0, **kwargs)


def test_concurrent_streams_are_batched_and_each_gets_its_own_stream(server: RunningServer) -> None:
    before = server.metrics()
    lengths = [2, 3, 4, 5, 6, 7, 8, 20]

    def stream(max_tokens: int) -> tuple[str, list[str | None]]:
        body = {"model": MODEL_NAME, "messages": HELLO, "max_tokens": max_tokens, "stream": True}
        text, finishes = "", []
        with httpx.stream("POST", f"{server.base}/v1/chat/completions", json=body, headers=AUTH, timeout=30) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choice = json.loads(line[6:])["choices"][0]
                text += choice["delta"].get("content") or ""
                finishes.append(choice["finish_reason"])
        return text, finishes

    with concurrent.futures.ThreadPoolExecutor(len(lengths)) as pool:
        results = list(pool.map(stream, lengths))
    full = httpx.post(f"{server.base}/v1/chat/completions", json={"messages": HELLO}, headers=AUTH).json()
    tokens = full["usage"]["completion_tokens"]  # the answer's tokens and the end-of-sequence token
    for max_tokens, (text, finishes) in zip(lengths, results, strict=True):
        assert ANSWER.startswith(text) and text, (max_tokens, text)
        assert finishes[-1] == ("length" if max_tokens < tokens else "stop")
        assert finishes[:-1] == [None] * (len(finishes) - 1)
    assert results[-1][0] == ANSWER
    after = server.metrics()
    batches = sample(after, "slm_onnx:batches_total", **LABELS) - sample(before, "slm_onnx:batches_total", **LABELS)
    assert batches < len(lengths)  # requests shared batches
    assert sample(after, "slm_onnx:max_batch_size", **LABELS) == 4
    assert sample(after, "vllm:num_requests_running", **LABELS) == 0
    assert sample(after, "vllm:num_requests_waiting", **LABELS) == 0


def test_a_late_request_is_not_held_until_a_long_batch_ends(server: RunningServer) -> None:
    """Static batching would make the late request wait ~2 s; parking bounds it by 16 steps (0.16 s here)."""
    long_body = {"model": MODEL_NAME, "messages": HELLO, "max_tokens": 200, "min_tokens": 200, "temperature": 0}
    alone = post(server, "/v1/chat/completions", long_body).json()["choices"][0]["message"]["content"]
    before = sample(server.metrics(), "vllm:num_preemptions_total", **LABELS)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        long_answer = pool.submit(post, server, "/v1/chat/completions", long_body)
        time.sleep(0.4)
        started = time.monotonic()
        late = post(server, "/v1/chat/completions", {"messages": HELLO, "max_tokens": 3})
        late_seconds = time.monotonic() - started
        assert late.status_code == 200 and not long_answer.done()
        assert late_seconds < 1.0
        # Greedy decoding resumes the parked request to the very same text.
        assert long_answer.result().json()["choices"][0]["message"]["content"] == alone
    assert sample(server.metrics(), "vllm:num_preemptions_total", **LABELS) > before


@pytest.mark.parametrize(
    ("field", "value"),
    [("logprobs", True), ("top_logprobs", 3), ("tools", [{"type": "function", "function": {"name": "f"}}]),
     ("tool_choice", "required"), ("presence_penalty", 0.5), ("frequency_penalty", 1.0), ("best_of", 2),
     ("logit_bias", {"5": 10})],
)  # fmt: skip
def test_unsupported_fields_are_a_400_naming_them(server: RunningServer, field: str, value: Any) -> None:
    response = post(server, "/v1/chat/completions", {"messages": HELLO, field: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and field in error["message"] and error["code"] == "unsupported_parameter"
    response = post(server, "/v1/completions", {"prompt": "x", field: value})
    assert response.status_code == 400 and response.json()["error"]["param"] == field


def test_structured_output_through_langchain(server: RunningServer) -> None:
    require("langchain_openai", "pydantic")
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel, Field

    class Person(BaseModel):
        name: str = Field(max_length=12)  # bounded: random weights would ramble up to max_tokens
        age: int = Field(ge=0, le=150)

    llm = ChatOpenAI(model=MODEL_NAME, base_url=f"{server.base}/v1", api_key=KEYS["team-a"], max_retries=0,
                     max_tokens=200, temperature=0)  # type: ignore[call-arg]  # fmt: skip
    person = llm.with_structured_output(Person, method="json_schema").invoke("Who are you?")
    assert isinstance(person, Person)  # random weights: garbage values, but of the schema's types


def test_json_object_and_schema_response_formats(server: RunningServer) -> None:
    body = {"messages": HELLO, "max_tokens": 150, "response_format": {"type": "json_object"}}
    content = post(server, "/v1/chat/completions", body).json()["choices"][0]["message"]["content"]
    assert content.startswith("{")  # an object (random weights may not close it within max_tokens)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}  # fmt: skip
    body["response_format"] = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    content = post(server, "/v1/chat/completions", body).json()["choices"][0]["message"]["content"]
    assert isinstance(json.loads(content)["ok"], bool)
    body["response_format"] = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": 5}}}
    response = post(server, "/v1/chat/completions", body)
    assert response.status_code == 400, response.text


def test_echo_repetition_penalty_and_seeded_sampling(server: RunningServer) -> None:
    data = post(server, "/v1/completions", {"prompt": "Once upon", "max_tokens": 3, "echo": True}).json()
    assert data["choices"][0]["text"].startswith("Once upon")
    response = post(server, "/v1/chat/completions", {"messages": HELLO, "repetition_penalty": 1.2})
    assert response.status_code == 200
    seeded = {"prompt": "x", "max_tokens": 8, "temperature": 1.0, "seed": 2**63 + 5}
    first = post(server, "/v1/completions", seeded).json()["choices"][0]["text"]
    assert post(server, "/v1/completions", seeded).json()["choices"][0]["text"] == first
    response = post(server, "/v1/chat/completions", {"messages": HELLO, "echo": True})
    assert response.status_code == 400 and response.json()["error"]["param"] == "echo"


@pytest.mark.parametrize(
    "content",
    [
        b'{"messages": [{"role": "user", "content": "hi"}], "seed": 18446744073709551616}',
        b'{"messages": [{"role": "user", "content": "hi"}], "top_k": 99999999999999}',
        b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
    ],
)
def test_out_of_range_and_invalid_unicode_are_plain_400s(server: RunningServer, content: bytes) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = httpx.post(f"{server.base}/v1/chat/completions", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_body_limit_is_a_413(server: RunningServer) -> None:
    big = {"messages": [{"role": "user", "content": "x" * (MAX_BODY + 10)}]}
    response = post(server, "/v1/chat/completions", big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    sample(server.metrics(), "slm_onnx:requests_rejected_total", **LABELS, reason="too_large")


def test_large_bodies_do_not_stall_health(server: RunningServer) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "word " * (2 * 1024 * 1024)}]}).encode()  # 10 MB
    statuses: list[int] = []

    def send() -> None:
        headers = {**AUTH, "Content-Type": "application/json"}
        r = httpx.post(f"{server.base}/v1/chat/completions", content=body, headers=headers, timeout=120)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    worst = 0.0
    while any(t.is_alive() for t in threads):
        started = time.monotonic()
        assert httpx.get(f"{server.base}/health", timeout=10).status_code == 200
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    # Beyond the context (400); on a loaded machine an upload may outlast this server's 3 s body deadline (408);
    # bodies beyond the buffered-bytes budget (16 MiB: one 10 MB body at a time) are refused before reading (429).
    assert statuses and set(statuses) <= {400, 408, 429}
    assert worst < 2.0, worst  # generous: a loaded 2-core machine


def test_slow_headers_and_bodies_are_cut_off(server: RunningServer) -> None:
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server
        assert 0.5 < time.monotonic() - started < 4
    with socket.create_connection((host, port), timeout=8) as sock:
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode() + b'{"prompt": ')  # the body never completes
        started = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert 2.5 < time.monotonic() - started < 6


def test_api_keys_file_accepts_each_client_and_nothing_else(server: RunningServer) -> None:
    for key in KEYS.values():
        response = httpx.get(f"{server.base}/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": KEYS["team-a"]}):
        response = httpx.post(f"{server.base}/v1/completions", json={"prompt": "x"}, headers=headers)
        assert response.status_code == 401
    assert httpx.get(f"{server.base}/health").status_code == 200


def test_openai_client_streams_through_the_engine(client: openai.OpenAI) -> None:
    chunks = list(client.completions.create(model=MODEL_NAME, prompt="x", max_tokens=40, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == ANSWER
