"""In-process checks of the scheduler, admission, stop strings and request parsing: no server process, no model."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from onnx_server_helpers import require

require("fastapi", "prometheus_client", "onnxruntime_genai")

from fastapi import Request  # noqa: E402
from fastapi.responses import Response  # noqa: E402
from slm_onnx_server.admission import Admission  # noqa: E402
from slm_onnx_server.engine import Delta, Event, Failed, Finished, Job, SamplingParams, Timings  # noqa: E402
from slm_onnx_server.protocol import UNSUPPORTED_FIELDS, APIError, ChatCompletionRequest  # noqa: E402
from slm_onnx_server.scheduler import Scheduler, StepEvent  # noqa: E402
from slm_onnx_server.serving import parse_body  # noqa: E402
from slm_onnx_server.stops import StopMatcher  # noqa: E402

EOS = 0


@dataclass
class FakeRequest:
    job: Job
    produced: int = 0
    start: int = 0  # tokens of earlier turns (og.Engine's usage counts the current turn only)
    cancel_asked: bool = False
    open: bool = True


@dataclass
class FakeBackend:
    """Each request generates tokens 1, 2, 3 … (decoded as letters) up to `answer` tokens, then EOS."""

    answer: int = 5
    step_seconds: float = 0.0
    active: list[FakeRequest] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)  # per begin: tokens the turn resumes after
    steps: int = 0

    def begin(self, job: Job, generated: Sequence[int] = ()) -> object:
        if not self.active:
            self.batches.append(0)
        self.batches[-1] += 1
        self.resumed.append(len(generated))
        request = FakeRequest(job, produced=len(generated), start=len(generated))
        self.active.append(request)
        return request

    def step(self) -> Sequence[StepEvent]:
        self.steps += 1
        if self.step_seconds:
            time.sleep(self.step_seconds)
        events: list[StepEvent] = []
        for request in list(self.active):
            if request.cancel_asked:
                events.append(StepEvent(request, None, "cancelled", request.produced - request.start))
                self.active.remove(request)
                continue
            if request.produced == self.answer:
                events.append(StepEvent(request, None, "eos", request.produced - request.start))
                self.active.remove(request)
                continue
            request.produced += 1
            done = "max_tokens" if request.produced == request.job.params.max_tokens else None
            events.append(StepEvent(request, request.produced, done, request.produced - request.start))
            if done:
                self.active.remove(request)
        return events

    def has_pending(self) -> bool:
        return bool(self.active)

    def cancel(self, handle: object) -> None:
        assert isinstance(handle, FakeRequest)
        handle.cancel_asked = True

    def close(self, handle: object) -> None:
        assert isinstance(handle, FakeRequest)
        handle.open = False

    def decoder(self) -> Callable[[int], str]:
        return lambda token: chr(ord("a") + (token - 1) % 26)

    def is_eos(self, token: int) -> bool:
        return token == EOS


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.done = threading.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, Finished | Failed):
            self.done.set()

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, Delta))

    @property
    def finished(self) -> Finished:
        last = self.events[-1]
        assert isinstance(last, Finished)
        return last


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail (never hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.002)


def job(max_tokens: int = 10, stop: tuple[str, ...] = ()) -> tuple[Job, Collector]:
    sink = Collector()
    return Job([1, 2, 3], SamplingParams(max_tokens=max_tokens, stop=stop), Timings(time.monotonic()), sink), sink


def scheduler(backend: FakeBackend, batch: int = 4, **kwargs: object) -> Scheduler:
    finished: list[Finished] = []
    s = Scheduler(lambda: backend, batch, on_finished=lambda done, _: finished.append(done), **kwargs)  # type: ignore[arg-type]
    s.start()
    return s


def test_a_burst_is_one_batch_and_each_request_gets_its_own_stream() -> None:
    backend = FakeBackend(answer=5, step_seconds=0.01)
    jobs = [job(max_tokens=n) for n in (2, 3, 10, 10)]
    preparing = [len(jobs)]
    s = Scheduler(lambda: backend, 4, gather_seconds=1.0, incoming=lambda: preparing[0])
    s.start()
    for j, _ in jobs:  # arrive one by one, as tokenisation finishes; the batch waits for all of them
        preparing[0] -= 1
        s.submit(j)
        s.wake()
    for _, sink in jobs:
        assert sink.done.wait(5)
    assert backend.batches == [4]
    assert [sink.text for _, sink in jobs] == ["ab", "abc", "abcde", "abcde"]
    assert [sink.finished.finish_reason for _, sink in jobs] == ["length", "length", "stop", "stop"]
    assert [sink.finished.completion_tokens for _, sink in jobs] == [2, 3, 6, 6]  # the EOS token counts
    s.stop()


def test_a_request_arriving_mid_batch_waits_for_the_batch_boundary() -> None:
    backend = FakeBackend(answer=50, step_seconds=0.01)
    s = scheduler(backend)
    first, first_sink = job(max_tokens=20)
    s.submit(first)
    wait_until(lambda: bool(first_sink.events))
    late, late_sink = job(max_tokens=2)
    s.submit(late)
    assert (s.running, s.waiting) == (1, 1)
    assert late_sink.done.wait(5) and first_sink.done.is_set()
    assert backend.batches == [1, 1]
    assert late.timings.scheduled >= first.timings.finished
    s.stop()


def test_a_late_request_starts_within_the_step_budget_and_the_parked_one_resumes_exactly() -> None:
    backend = FakeBackend(answer=60, step_seconds=0.005)
    preempted: list[int] = []
    s = scheduler(backend, preempt_after_steps=5, on_preempt=preempted.append)
    first, first_sink = job(max_tokens=40)
    s.submit(first)
    wait_until(lambda: len(first_sink.events) >= 10)
    late, late_sink = job(max_tokens=3)
    s.submit(late)
    assert late_sink.done.wait(5) and first_sink.done.wait(5)
    assert late.timings.first_token is not None and first.timings.finished > late.timings.first_token
    assert backend.batches[:2] == [1, 2]  # the first batch ended early; both ran together in the next one
    assert backend.resumed[1] >= 10 and preempted[0] == 1
    assert first_sink.text == "".join(chr(ord("a") + i % 26) for i in range(40))  # nothing lost or repeated
    assert first_sink.finished.completion_tokens == 40 and first_sink.finished.finish_reason == "length"
    assert late_sink.text == "abc"
    s.stop()


def test_the_next_step_waits_briefly_until_a_first_token_reached_its_client() -> None:
    """og.Engine's steps hold the GIL: without the wait the first chunk would leave one step late."""
    backend = FakeBackend(answer=60)
    step_started: list[float] = []
    original_step = backend.step

    def step() -> Sequence[StepEvent]:
        step_started.append(time.monotonic())
        return original_step()

    backend.step = step  # type: ignore[method-assign]
    s = scheduler(backend)
    j, sink = job(max_tokens=3)
    j.first_delivered = threading.Event()
    delivered_at: list[float] = []

    def deliver() -> None:  # the event loop sending the first chunk, 3 ms after the token
        time.sleep(0.003)
        delivered_at.append(time.monotonic())
        assert j.first_delivered is not None
        j.first_delivered.set()

    threading.Thread(target=deliver).start()
    s.submit(j)
    assert sink.done.wait(5)
    assert step_started[1] >= delivered_at[0]
    s.stop()


def test_a_first_token_nobody_collects_holds_the_engine_at_most_briefly() -> None:
    backend = FakeBackend(answer=60)
    s = scheduler(backend, first_token_wait=0.02)
    j, sink = job(max_tokens=3)
    j.first_delivered = threading.Event()  # never set: the client vanished between the token and the send
    started = time.monotonic()
    s.submit(j)
    assert sink.done.wait(5)
    assert time.monotonic() - started < 0.5
    s.stop()


def test_a_full_batch_is_not_parked_for_a_late_request() -> None:
    backend = FakeBackend(answer=60, step_seconds=0.002)
    s = scheduler(backend, batch=1, preempt_after_steps=2)
    first, first_sink = job(max_tokens=20)
    s.submit(first)
    wait_until(lambda: bool(first_sink.events))
    late, late_sink = job(max_tokens=2)
    s.submit(late)
    assert late_sink.done.wait(5)
    assert backend.batches == [1, 1] and backend.resumed == [0, 0]  # parking would free no slot
    assert late.timings.scheduled >= first.timings.finished
    s.stop()


def test_a_batch_holding_a_guided_request_is_not_parked() -> None:
    backend = FakeBackend(answer=60, step_seconds=0.002)
    s = scheduler(backend, preempt_after_steps=2)
    sink = Collector()
    guided = Job([1], SamplingParams(max_tokens=20, guidance=("json_schema", "{}")), Timings(time.monotonic()), sink)
    s.submit(guided)
    wait_until(lambda: bool(sink.events))
    late, late_sink = job(max_tokens=2)
    s.submit(late)
    assert late_sink.done.wait(5)
    assert backend.resumed == [0, 0]
    assert late.timings.scheduled >= guided.timings.finished
    s.stop()


def test_cancelling_a_parked_request_reports_what_it_generated() -> None:
    backend = FakeBackend(answer=60, step_seconds=0.01)
    s = scheduler(backend, batch=2, preempt_after_steps=3)
    first, first_sink = job(max_tokens=50)
    second, second_sink = job(max_tokens=4)
    s.submit(first)
    s.submit(second)
    assert second_sink.done.wait(5)
    late, late_sink = job(max_tokens=50)
    s.submit(late)  # parks `first` at the next step
    wait_until(lambda: backend.resumed.count(0) >= 3)
    s.cancel(first)
    s.cancel(late)
    assert first_sink.done.wait(5) and late_sink.done.wait(5)
    assert first_sink.finished.finish_reason == "abort"
    assert first_sink.finished.completion_tokens == len(first_sink.text) > 0
    s.stop()


def test_cancelling_a_waiting_request_drops_it_at_once() -> None:
    backend = FakeBackend(answer=50, step_seconds=0.01)
    s = scheduler(backend, batch=1)
    first, first_sink = job(max_tokens=30)
    s.submit(first)
    wait_until(lambda: bool(first_sink.events))
    waiting, waiting_sink = job()
    s.submit(waiting)
    assert s.waiting == 1
    s.cancel(waiting)
    assert waiting_sink.done.is_set() and waiting_sink.finished.finish_reason == "abort"
    assert s.waiting == 0
    s.cancel(first)
    assert first_sink.done.wait(2)
    assert first_sink.finished.finish_reason == "abort"
    assert first_sink.finished.completion_tokens < 30
    wait_until(lambda: not backend.active and s.batch_size == 0, timeout=2)  # the engine ended the turn
    s.stop()


def test_a_stop_string_ends_the_turn_in_the_engine() -> None:
    backend = FakeBackend(answer=9)
    s = scheduler(backend)
    j, sink = job(max_tokens=9, stop=("cd",))
    s.submit(j)
    assert sink.done.wait(5)
    assert sink.text == "ab"
    assert sink.finished.finish_reason == "stop"
    s.stop()


def test_a_request_the_engine_refuses_fails_alone() -> None:
    class Refusing(FakeBackend):
        def begin(self, job: Job, generated: Sequence[int] = ()) -> object:
            if job.params.max_tokens == 1:
                raise ValueError("Error creating grammar")
            return super().begin(job, generated)

    backend = Refusing(answer=3)
    s = scheduler(backend)
    bad, bad_sink = job(max_tokens=1)
    good, good_sink = job(max_tokens=5)
    s.submit(bad)
    s.submit(good)
    assert bad_sink.done.wait(5) and good_sink.done.wait(5)
    failure = bad_sink.events[-1]
    assert isinstance(failure, Failed) and failure.status == 400
    assert good_sink.text == "abc"
    assert s.running == 0
    s.stop()


def test_seeded_sampling_goes_to_the_generator_path() -> None:
    backend = FakeBackend()
    used: list[Job] = []

    def generator(j: Job) -> Finished:
        used.append(j)
        done = Finished("stop", 3, 1, j.timings)
        j.sink(done)
        return done

    s = scheduler(backend, generator=generator)
    sink = Collector()
    seeded = Job([1], SamplingParams(max_tokens=4, seed=7, temperature=0.8), Timings(time.monotonic()), sink)
    s.submit(seeded)
    assert sink.done.wait(5)
    assert used == [seeded] and backend.batches == []
    greedy, greedy_sink = job()
    s.submit(greedy)  # a seed with temperature 0 changes nothing: the engine serves it
    assert greedy_sink.done.wait(5) and backend.batches == [1]
    s.stop()


def test_admission_bounds_requests_and_releases_once() -> None:
    rejected: list[int] = []
    admission = Admission(2, 1, retry_after=3, on_reject=lambda: rejected.append(1))
    tickets = [admission.admit() for _ in range(3)]
    with pytest.raises(APIError) as raised:
        admission.admit()
    assert raised.value.status == 429 and raised.value.headers == {"Retry-After": "3"}
    assert (admission.admitted, admission.preparing, rejected) == (3, 3, [1])
    tickets[0].prepared()
    tickets[0].release()
    tickets[0].release()
    tickets[1].release()
    assert (admission.admitted, admission.preparing) == (1, 1)


def test_stop_strings_are_matched_in_linear_time() -> None:
    # 16 stop strings of 8,000 characters that almost match everywhere, over 2,000 tokens: was 36 s.
    stops = [("ab" * 4000)[:7999] + chr(0x41 + i) for i in range(16)]
    matcher = StopMatcher(stops)
    started = time.perf_counter()
    out = []
    for _ in range(2000):
        text, hit = matcher.feed("ab")
        out.append(text)
        assert not hit
    out.append(matcher.flush())
    assert time.perf_counter() - started < 3.0
    assert "".join(out) == "ab" * 2000
    assert StopMatcher(["aab"]).feed("aaab") == ("a", True)  # a partial match restarts correctly


@pytest.mark.parametrize("name", sorted(UNSUPPORTED_FIELDS))
def test_each_unsupported_field_is_a_400_naming_it(name: str) -> None:
    values = {
        "logprobs": True,
        "top_logprobs": 2,
        "tools": [{"type": "function"}],
        "tool_choice": "auto",
        "functions": [{"name": "f"}],
        "function_call": "auto",
        "best_of": 2,
        "suffix": "x",
        "logit_bias": {"5": 1},
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "modalities": ["audio"],
    }
    body = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "hi"}], name: values.get(name, {"x": 1})}
    )
    with pytest.raises(APIError) as raised:
        body.refuse_unsupported()
    assert raised.value.status == 400 and raised.value.param == name and name in raised.value.message
    neutral = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "hi"}], name: UNSUPPORTED_FIELDS[name][0]}
    )
    neutral.refuse_unsupported()  # the neutral value (what clients send by default) is accepted


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe{}", "invalid_unicode"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "seed": 18446744073709551616}', "invalid_value"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "top_k": 1099511627776}', "invalid_value"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "repetition_penalty": 0}', "invalid_value"),
        (b"[1]", "invalid_value"),
        (b"{", "invalid_json"),
    ],
)
def test_bad_bodies_are_plain_400s(raw: bytes, code: str) -> None:
    with pytest.raises(APIError) as raised:
        parse_body(ChatCompletionRequest, raw)
    assert raised.value.status == 400 and raised.value.code == code
    assert "Traceback" not in raised.value.message


# --- the serving layer in-process: a fake model, the real scheduler on a fake engine, no server process -----


class FakeModel:
    context_length = 64
    vocab_size = 100
    max_token_chars = 1

    def encode(self, text: str) -> list[int]:
        return [ord(c) % 100 for c in text]

    def completion_prompt(self, text: str) -> list[int]:
        return self.encode(text)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return "".join(m["content"] for m in messages)

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)

    def surely_too_long(self, text: str) -> bool:
        return len(text) > 10 * self.context_length


def serving_app(backend: FakeBackend, capacity: int = 4, queue: int = 4) -> tuple[object, Scheduler]:
    from concurrent.futures import ThreadPoolExecutor

    from fastapi import FastAPI
    from slm_onnx_server.metrics import Metrics
    from slm_onnx_server.serving import ChatServing, Context, error_response

    admission = Admission(capacity, queue, retry_after=1)
    s = Scheduler(lambda: backend, capacity, incoming=lambda: admission.preparing)
    s.start()
    model = FakeModel()
    context = Context("fake", None, 1, admission, Metrics("fake", 64), ThreadPoolExecutor(2), lambda: model,
                      lambda: s, lambda: False)  # fmt: skip
    chat = ChatServing(context)
    app = FastAPI()

    @app.post("/v1/chat/completions", response_model=None)
    async def route(request: Request) -> Response:
        try:
            return await chat.handle(request)
        except APIError as error:
            return error_response(error)

    return app, s


def test_serving_streams_and_responds_without_a_process() -> None:
    from fastapi.testclient import TestClient

    app, s = serving_app(FakeBackend(answer=4))
    with TestClient(app) as client:  # type: ignore[arg-type]
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
        data = client.post("/v1/chat/completions", json=body).json()
        assert data["choices"][0]["message"]["content"] == "abcd"
        assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
        lines = []
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True, "stop": "c"}) as r:
            lines = [line for line in r.iter_lines() if line]
        chunks = [json.loads(line[6:]) for line in lines[:-1]]
        assert lines[-1] == "data: [DONE]"
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "ab"
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        response = client.post("/v1/chat/completions", json={**body, "tools": [{"type": "function"}]})
        assert response.status_code == 400 and response.json()["error"]["param"] == "tools"
    assert s.running == 0 and s.waiting == 0
    s.stop()
