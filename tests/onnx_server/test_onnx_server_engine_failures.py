"""In-process checks of issue 25's defences: engine failures, guided routing, schema limits and the body budget.

No model, no process: the scheduler runs over a fake backend that fails the way og.Engine 0.18 does (a failure
event, then `create_request` raising "no longer healthy"), and the middleware over a bare ASGI app.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from onnx_server_helpers import require

require("fastapi", "prometheus_client", "onnxruntime_genai")

from slm_onnx_server.engine import Failed, Finished, Job, SamplingParams, Timings  # noqa: E402
from slm_onnx_server.guidance import GuidanceLimits, guidance_for  # noqa: E402
from slm_onnx_server.limits import BodyBudget, BodyLimitMiddleware  # noqa: E402
from slm_onnx_server.protocol import APIError, ResponseFormat  # noqa: E402
from slm_onnx_server.scheduler import EngineFailure, Scheduler, StepEvent  # noqa: E402
from test_onnx_server_scheduling import Collector, FakeBackend, job, wait_until  # noqa: E402

GUIDED = ("json_schema", '{"type":"object"}')
DEEP = '{"type":"object","properties":{"a":' * 20 + '{"type":"string"}' + "}}" * 20  # 41 levels of JSON


class Wedging(FakeBackend):
    """Fails as og.Engine did under a too-complex grammar: a failure event, then every call raises."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.broken = False

    def begin(self, job: Job, generated: Sequence[int] = ()) -> object:
        if self.broken:
            raise EngineFailure("Static-batch execution failed and the Engine is no longer healthy.")
        return super().begin(job, generated)

    def step(self) -> Sequence[StepEvent]:
        if any(r.job.params.guidance is not None for r in self.active):
            self.broken = True
            raise EngineFailure("og.Engine reported ENGINE_EXECUTION_FAILURE")
        return super().step()


def engines(count: int, **kwargs: Any) -> list[Wedging]:
    return [Wedging(**kwargs) for _ in range(count)]


def start(built: list[Wedging], **kwargs: Any) -> Scheduler:
    queue = list(built)
    s = Scheduler(lambda: queue.pop(0), 4, **kwargs)
    s.start()
    return s


def guided_job(max_tokens: int = 10) -> tuple[Job, Collector]:
    sink = Collector()
    params = SamplingParams(max_tokens=max_tokens, guidance=GUIDED)
    return Job([1, 2, 3], params, Timings(time.monotonic()), sink), sink


def test_an_engine_failure_answers_503_and_the_rebuilt_engine_serves_the_rest() -> None:
    built = engines(2, answer=3, step_seconds=0.01)
    rebuilt: list[int] = []
    s = start(built, guided_on_generator=False, max_rebuilds=3, on_rebuild=lambda: rebuilt.append(1))
    plain, plain_sink = job(max_tokens=20)
    bad, bad_sink = guided_job()
    s.submit(plain)
    s.submit(bad)
    assert plain_sink.done.wait(5) and bad_sink.done.wait(5)
    for sink in (plain_sink, bad_sink):
        failure = sink.events[-1]
        assert isinstance(failure, Failed) and failure.status == 503, sink.events
    later, later_sink = job(max_tokens=5)
    s.submit(later)
    assert later_sink.done.wait(5)
    assert later_sink.text == "abc" and isinstance(later_sink.events[-1], Finished)
    assert rebuilt == [1] and s.healthy and s.running == 0
    s.stop()


def test_a_failure_when_starting_requeues_the_requests_not_started() -> None:
    first, second = engines(2, answer=2)
    first.broken = True  # create_request raises at once: not the request's doing
    s = start([first, second], guided_on_generator=False)
    jobs = [job(max_tokens=5) for _ in range(3)]
    for j, _ in jobs:
        s.submit(j)
    for _, sink in jobs:
        assert sink.done.wait(5)
        assert sink.text == "ab", sink.events  # served by the rebuilt engine, none refused
    assert s.rebuilds == 1
    s.stop()


def test_beyond_its_rebuilds_the_engine_is_out_of_service_and_nothing_hangs() -> None:
    built = engines(1, answer=3)
    s = start(built, guided_on_generator=False, max_rebuilds=0)
    bad, bad_sink = guided_job()
    s.submit(bad)
    assert bad_sink.done.wait(5)
    wait_until(lambda: not s.healthy)
    assert "rebuilds" in (s.failure or "")
    for _ in range(30):  # more than batch + queue: no ticket may stay taken
        later, later_sink = job()
        s.submit(later)
        assert later_sink.done.wait(5)
        failure = later_sink.events[-1]
        assert isinstance(failure, Failed) and failure.status == 503
    s.stop()


def test_a_failed_rebuild_turns_the_engine_out_of_service() -> None:
    built = engines(1, answer=3)
    calls = [0]

    def factory() -> Wedging:
        calls[0] += 1
        if calls[0] > 1:
            raise RuntimeError("cannot allocate the KV cache")
        return built[0]

    s = Scheduler(factory, 4, guided_on_generator=False)
    s.start()
    bad, bad_sink = guided_job()
    s.submit(bad)
    assert bad_sink.done.wait(5)
    wait_until(lambda: not s.healthy)
    assert "could not be rebuilt" in (s.failure or "")
    s.stop()


def test_guided_requests_go_to_the_generator_and_leave_the_batch_free() -> None:
    backend = FakeBackend(answer=3)
    served: list[Job] = []

    def generator(j: Job) -> Finished:
        served.append(j)
        done = Finished("stop", 3, 1, j.timings)
        j.sink(done)
        return done

    s = Scheduler(lambda: backend, 4, generator=generator)
    s.start()
    guided, guided_sink = guided_job()
    plain, plain_sink = job(max_tokens=5)
    s.submit(guided)
    s.submit(plain)
    assert guided_sink.done.wait(5) and plain_sink.done.wait(5)
    assert served == [guided] and plain_sink.text == "abc"
    s.stop()


def test_the_stop_matcher_is_the_one_built_when_preparing() -> None:
    j, _ = job(stop=("x" * 10,))
    prepared = j.stop_matcher()
    assert j.stop_matcher() is prepared


def formats(schema: dict[str, Any]) -> ResponseFormat:
    return ResponseFormat.model_validate({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})


def optional_properties(count: int) -> dict[str, Any]:
    return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(count)}}


@pytest.mark.parametrize(
    ("schema", "code", "words"),
    [
        (optional_properties(700), "schema_too_complex", "700 properties"),
        ({"anyOf": [optional_properties(1) for _ in range(200)]}, "schema_too_complex", "400 properties"),
        ({"type": "object", "description": "x" * 40_000}, "schema_too_large", "at most 32768"),
        (json.loads(DEEP), "schema_too_deep", "at most 32"),
        ({"type": "object", "x-guidance": {"whitespace_pattern": "(a|aa)*"}}, "unsupported_parameter", "pattern"),
        ({"type": "object", "x-guidance": {"whitespace_flexible": "yes"}}, "invalid_value", "boolean"),
    ],
)
def test_schemas_beyond_a_limit_are_a_400_naming_it(schema: dict[str, Any], code: str, words: str) -> None:
    with pytest.raises(APIError) as raised:
        guidance_for(formats(schema), GuidanceLimits())
    assert raised.value.status == 400 and raised.value.code == code
    assert words.replace("boolean", "bool") in raised.value.message
    assert (raised.value.param or "").startswith("response_format.json_schema.schema")


def test_schemas_within_the_limits_get_compact_json_unless_the_client_asks() -> None:
    kind, grammar = guidance_for(formats(optional_properties(256)), GuidanceLimits()) or ("", "")
    assert kind == "json_schema" and json.loads(grammar)["x-guidance"] == {"whitespace_flexible": False}
    flexible = formats({"type": "object", "x-guidance": {"whitespace_flexible": True}})
    assert json.loads((guidance_for(flexible, GuidanceLimits()) or ("", ""))[1])["x-guidance"] == {
        "whitespace_flexible": True
    }
    assert guidance_for(ResponseFormat(type="text"), GuidanceLimits()) is None


async def _call(app: BodyLimitMiddleware, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> int:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "headers": headers, "path": "/v1/completions"}
    await app(scope, receive, send)  # type: ignore[arg-type]
    return int(sent[0]["status"])


def test_the_body_budget_is_taken_before_reading_and_given_back() -> None:
    budget = BodyBudget(100)
    seen: list[int] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(budget.held)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rejected: list[str] = []
    app = BodyLimitMiddleware(inner, max_bytes=80, timeout=5, on_reject=rejected.append, budget=budget, retry_after=1)

    async def scenario() -> list[int]:
        statuses = [await _call(app, [(b"content-length", b"60")], [b"x" * 60])]
        budget.take(50)  # another body being read
        statuses.append(await _call(app, [(b"content-length", b"60")], [b"x" * 60]))  # refused before reading
        statuses.append(await _call(app, [], [b"x" * 30, b"x" * 30]))  # chunked: taken as it arrives
        budget.give(50)
        statuses.append(await _call(app, [(b"content-length", b"90")], [b"x" * 90]))  # over the body limit
        statuses.append(await _call(app, [], [b"x" * 50, b"x" * 40]))  # chunked, over the body limit
        return statuses

    assert asyncio.run(scenario()) == [200, 429, 429, 413, 413]
    assert seen == [60] and budget.held == 0
    assert rejected == ["bodies_in_flight", "bodies_in_flight", "too_large", "too_large"]
