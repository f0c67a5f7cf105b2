"""End-to-end: the real server on 127.0.0.1, the committed tiny model, the official openai client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from onnx_server_helpers import ANSWER, MODEL_NAME, RunningServer, require, sample

require("onnxruntime_genai", "fastapi", "uvicorn", "prometheus_client", "openai", "httpx")

import httpx  # noqa: E402
import openai  # noqa: E402

API_KEY = "test-key-not-a-secret"
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def server(start_server: type[RunningServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    key_file = tmp_path_factory.mktemp("secret") / "api-key"
    key_file.write_text(API_KEY + "\n")
    running = start_server(
        {
            "SLM_ONNX_API_KEY_FILE": str(key_file),
            "SLM_ONNX_TEST_LOAD_DELAY_SECONDS": "1.0",
            "SLM_ONNX_MAX_CONCURRENCY": "2",
            "SLM_ONNX_MAX_QUEUE": "4",
        }
    )
    running.wait_ready()
    yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=API_KEY, max_retries=0, timeout=20.0)


def post(server: RunningServer, path: str, body: Any, *, raw: bool = False) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    content = body if raw else json.dumps(body)
    return httpx.post(f"{server.base}{path}", content=content, headers=headers, timeout=20.0)


def test_health_is_503_while_loading_then_200(server: RunningServer) -> None:
    assert server.health_seen[0] == 503, server.health_seen
    assert server.health_seen[-1] == 200
    response = httpx.get(f"{server.base}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [MODEL_NAME]
    assert models[0].model_dump()["max_model_len"] == 256


def test_chat_answers_the_known_text_with_usage(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL_NAME, messages=HELLO)
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == ANSWER
    assert choice.finish_reason == "stop"
    assert completion.model == MODEL_NAME
    assert completion.usage is not None
    # "<|user|>Say hello.<|end|><|assistant|>": three special tokens and the text's tokens.
    assert completion.usage.prompt_tokens > 3
    assert completion.usage.completion_tokens == 10  # nine answer tokens and the end-of-sequence token
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 10


def test_sampling_parameters_are_accepted(client: openai.OpenAI) -> None:
    for options in ({"temperature": 0.0}, {"temperature": 1.3, "top_p": 0.8, "seed": 7}, {"seed": 1}):
        completion = client.chat.completions.create(model=MODEL_NAME, messages=HELLO, **options)  # type: ignore[call-overload]
        assert completion.choices[0].message.content == ANSWER, options


def test_chat_stream_yields_openai_chunks(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL_NAME, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 10


def test_stream_is_server_sent_events_ending_with_done(server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"model": MODEL_NAME, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{server.base}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"


@pytest.mark.parametrize("stop", ["tiny", ["model", " tiny"], [" am a t"]])
def test_stop_strings_end_the_answer_and_are_trimmed(client: openai.OpenAI, stop: str | list[str]) -> None:
    completion = client.chat.completions.create(model=MODEL_NAME, messages=HELLO, stop=stop)
    expected = {"tiny": "Hello! I am a ", " tiny": "Hello! I am a", " am a t": "Hello! I"}
    first = stop if isinstance(stop, str) else min(stop, key=ANSWER.find)
    assert completion.choices[0].message.content == expected[first]
    assert completion.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(model=MODEL_NAME, messages=HELLO, stop=stop, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected[first]
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_max_tokens_ends_with_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL_NAME, messages=HELLO, max_tokens=3)
    assert completion.choices[0].message.content == "Hello! I"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    completion = client.chat.completions.create(model=MODEL_NAME, messages=HELLO, max_completion_tokens=2)
    assert completion.choices[0].message.content == "Hello!"
    assert completion.choices[0].finish_reason == "length"


def test_text_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=MODEL_NAME, prompt="Anything at all", max_tokens=64)
    assert completion.choices[0].text == ANSWER
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 10
    short = client.completions.create(model=MODEL_NAME, prompt="Anything", max_tokens=5)
    assert short.choices[0].text == "Hello! I am a"
    assert short.choices[0].finish_reason == "length"
    chunks = list(client.completions.create(model=MODEL_NAME, prompt="Anything", max_tokens=64, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == ANSWER
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_min_tokens_and_ignore_eos_extensions(server: RunningServer) -> None:
    body = {"model": MODEL_NAME, "prompt": "x", "max_tokens": 25, "ignore_eos": True}
    response = post(server, "/v1/completions", body)
    assert response.status_code == 200
    data = response.json()
    assert data["usage"]["completion_tokens"] == 25
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["choices"][0]["text"].startswith(ANSWER)


def test_over_long_prompt_is_a_400_with_an_openai_error(client: openai.OpenAI, server: RunningServer) -> None:
    long_text = " ".join(["Tell me a story about a robot who learns to cook."] * 60)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": long_text}])
    assert raised.value.status_code == 400
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["code"] == "context_length_exceeded"
    assert error["type"] == "invalid_request_error"
    assert "maximum context length is 256" in error["message"]
    assert set(raised.value.response.json()["error"]) == {"message", "type", "param", "code"}
    # A short prompt with more max_tokens than the context leaves is refused the same way.
    response = post(server, "/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "max_tokens": 400})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


MALFORMED: list[tuple[str, Any, bool]] = [
    ("/v1/chat/completions", "{not json", True),
    ("/v1/chat/completions", "", True),
    ("/v1/chat/completions", "[1, 2]", True),
    ("/v1/chat/completions", {"model": MODEL_NAME}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": "hello"}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": []}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": [{"role": "wizard", "content": "x"}]}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "max_tokens": "ten"}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "max_tokens": 0}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "temperature": "hot"}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "temperature": 9}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "stream": "yes"}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "stop": 5}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "seed": 1.5}, False),
    ("/v1/chat/completions", {"model": MODEL_NAME, "messages": HELLO, "n": 2}, False),
    ("/v1/completions", {"model": MODEL_NAME, "prompt": 12}, False),
    ("/v1/completions", {"model": MODEL_NAME, "prompt": ["a", "b"]}, False),
    ("/v1/completions", {"model": MODEL_NAME, "prompt": [1, 99999]}, False),
    ("/v1/completions", {"model": MODEL_NAME, "prompt": ""}, False),
]


@pytest.mark.parametrize(("path", "body", "raw"), MALFORMED)
def test_malformed_bodies_are_400_never_500(server: RunningServer, path: str, body: Any, raw: bool) -> None:
    response = post(server, path, body, raw=raw)
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_unknown_model_and_route(server: RunningServer) -> None:
    response = post(server, "/v1/chat/completions", {"model": "gpt-9", "messages": HELLO})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    response = httpx.get(f"{server.base}/v1/nothing-here", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 404
    assert "error" in response.json()


def test_api_key_is_required_on_v1_only(server: RunningServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        response = httpx.post(f"{server.base}/v1/chat/completions", json={"messages": HELLO}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    bad = openai.OpenAI(base_url=f"{server.base}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert httpx.get(f"{server.base}/health").status_code == 200
    assert httpx.get(f"{server.base}/metrics").status_code == 200


def test_metrics_use_vllm_names_and_move(server: RunningServer, client: openai.OpenAI) -> None:
    before = server.metrics()
    labels = {"model_name": MODEL_NAME}
    completion = client.chat.completions.create(model=MODEL_NAME, messages=HELLO, max_tokens=4)
    client.chat.completions.create(model=MODEL_NAME, messages=HELLO)
    after = server.metrics()
    assert completion.usage is not None

    def delta(name: str, **extra: str) -> float:
        return sample(after, name, **labels, **extra) - sample(before, name, **labels, **extra)

    assert delta("vllm:prompt_tokens_total") == 2 * completion.usage.prompt_tokens
    assert delta("vllm:generation_tokens_total") == 4 + 10
    assert delta("vllm:request_success_total", finished_reason="length") == 1
    assert delta("vllm:request_success_total", finished_reason="stop") == 1
    for histogram in (
        "vllm:e2e_request_latency_seconds",
        "vllm:time_to_first_token_seconds",
        "vllm:request_queue_time_seconds",
        "vllm:request_prompt_tokens",
        "vllm:request_generation_tokens",
    ):
        assert delta(f"{histogram}_count") == 2, histogram
    assert delta("vllm:inter_token_latency_seconds_count") == 3 + 9
    assert sample(after, "vllm:num_requests_running", **labels) == 0
    assert sample(after, "vllm:num_requests_waiting", **labels) == 0
    assert sample(after, "vllm:time_to_first_token_seconds_bucket", **labels, le="+Inf") >= 2
    assert not any(key.endswith("_created") or "_created{" in key for key in after)


def test_prompt_tokens_are_the_models_chat_template(client: openai.OpenAI) -> None:
    from onnx_server_helpers import TINY_MODEL
    from slm_onnx_server.config import Settings
    from slm_onnx_server.engine import Engine

    engine = Engine(Settings.from_env({"SLM_ONNX_MODEL_PATH": str(TINY_MODEL)}))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
    prompt = engine.render_chat(messages)
    assert prompt == "<|system|>Be brief.<|end|><|user|>Say hello.<|end|><|assistant|>"
    completion = client.chat.completions.create(model=MODEL_NAME, messages=messages)  # type: ignore[arg-type]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == len(engine.encode(prompt))
