"""The serving layer: from a request body to a response, for chat and text completions.

`Serving.handle` admits the request (429 beyond the bound), prepares it (JSON parsing and validation, the chat
template, tokenisation, the response_format schema's limits (guidance.py), the stop-string matchers: all the
work that grows with the client's input) in a thread pool - only bodies up to 8 KiB, sub-millisecond work, on
the event loop - submits it to the scheduler and answers with `respond` (one JSON body) or `stream` (server-sent
events). A client that goes away cancels its generation (waiting: dropped at once; running: its turn is cancelled before
the next engine step). Nothing here needs a process or a model: tests drive it with a fake engine and scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from .admission import Admission
from .engine import Delta, Event, Failed, Finished, Job, SamplingParams, Timings
from .guidance import GuidanceLimits, guidance_for
from .metrics import Metrics
from .protocol import (
    APIError,
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatDelta,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    SamplingFields,
    Usage,
)
from .stops import StopMatcher

log = logging.getLogger("slm_onnx_server")
DISCONNECT_POLL_SECONDS = 0.25
#: Bodies up to this size are parsed and tokenised on the event loop (well under a millisecond); larger ones
#: (and so every expensive one) in the prepare pool.
INLINE_PREPARE_BYTES = 8 * 1024
Body = TypeVar("Body", bound=SamplingFields)


class Model(Protocol):
    """What serving needs from the loaded model (engine.Engine)."""

    context_length: int
    vocab_size: int
    max_token_chars: int  # the longest vocabulary entry: no token decodes to more characters

    def encode(self, text: str) -> list[int]: ...

    def completion_prompt(self, text: str) -> list[int]: ...

    def render_chat(self, messages: list[dict[str, str]]) -> str: ...

    def surely_too_long(self, text: str) -> bool: ...

    def decode(self, ids: list[int]) -> str: ...


class JobRunner(Protocol):
    """What serving needs from the scheduler."""

    def submit(self, job: Job) -> None: ...

    def cancel(self, job: Job) -> None: ...

    def wake(self) -> None: ...


@dataclass
class Prepared:
    prompt_ids: list[int]
    params: SamplingParams
    stream: bool
    include_usage: bool
    echo: str = ""  # completions with echo: the prompt text, put before the answer
    matcher: StopMatcher | None = None  # built here, off the scheduler's thread (its cost grows with the input)


@dataclass
class Context:
    """The shared state serving uses; `model` is None until the model is loaded."""

    served_model_name: str
    default_max_tokens: int | None
    retry_after_seconds: int
    admission: Admission
    metrics: Metrics
    prepare_pool: Executor
    model: Callable[[], Model | None]
    runner: Callable[[], JobRunner | None]
    load_failed: Callable[[], bool]
    guidance_limits: GuidanceLimits = field(default_factory=GuidanceLimits)


@dataclass
class _Watch:
    next_check: float  # loop time of the next disconnect check


def sse(payload: BaseModel | dict[str, Any]) -> str:
    text = payload.model_dump_json() if isinstance(payload, BaseModel) else _json(payload)
    return f"data: {text}\n\n"


def _json(payload: dict[str, Any]) -> str:
    import json

    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def parse_body(model: type[Body], raw: bytes) -> Body:
    """Validate a JSON body into `model`; every problem is a 400 with an OpenAI-style error."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise APIError(400, "The request body is not valid UTF-8.", code="invalid_unicode") from None
    try:
        body = model.model_validate_json(text)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        kind = problems[0]["type"] if problems else ""
        loc = problems[0]["loc"] if problems else ()
        if kind == "json_invalid" and "recursion limit" in str(problems[0].get("msg", "")):
            raise APIError(400, "The request body nests JSON deeper than the parser accepts (about 200 levels); "
                           "a response_format schema may nest at most as deep as the server's schema limit.",
                           code="nesting_too_deep") from None  # fmt: skip
        if kind == "json_invalid" or not text.strip():
            raise APIError(400, "The request body is not valid JSON.", code="invalid_json") from None
        if kind == "model_type" and not loc:
            raise APIError(400, "The request body must be a JSON object.", code="invalid_value") from None
        where = ".".join(str(p) for p in loc)
        message = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg', 'invalid')}" for e in problems[:5]
        )
        raise APIError(400, message, param=where or None, code="invalid_value") from None
    except ValueError:  # e.g. a lone surrogate the JSON parser refuses
        raise APIError(400, "The request body is not valid Unicode text.", code="invalid_unicode") from None
    body.refuse_unsupported()
    return body


def check_text(text: str, param: str) -> None:
    """A lone surrogate (JSON `\\ud800`) cannot be tokenised: a plain 400 instead of a failure later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise APIError(400, f"{param} contains invalid Unicode (a lone surrogate).", param=param,
                       code="invalid_unicode") from None  # fmt: skip


def usage(done: Finished) -> Usage:
    return Usage(
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        total_tokens=done.prompt_tokens + done.completion_tokens,
    )


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def generation_failed(event: Failed, retry_after: int) -> APIError:
    if event.status == 400:
        return APIError(400, event.message, code="invalid_value")
    if event.status == 503:
        return APIError(503, event.message, type="service_unavailable", code="engine_unavailable",
                        headers={"Retry-After": str(retry_after or 1)})  # fmt: skip
    return APIError(500, "Generation failed.", type="internal_error", code="generation_failed")


#: Sampling fields onnxruntime-genai reads as float32: a positive value that rounds to 0 there would be refused
#: by og.Engine and accepted by og.Generator, so both paths refuse it here.
FLOAT32_POSITIVE = ("temperature", "top_p", "repetition_penalty")
FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32


def check_float32(body: SamplingFields) -> None:
    for name in FLOAT32_POSITIVE:
        value = getattr(body, name)
        if 0.0 < value < FLOAT32_TINY:
            raise APIError(400, f"{name} must be 0 or at least {FLOAT32_TINY:.3g} (it is read as a float32).",
                           param=name, code="invalid_value")  # fmt: skip


class GuardedStreamingResponse(StreamingResponse):
    """A streaming response that runs `on_close` however it ends (finished, failed, client gone, never started)."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


class Serving(ABC):
    """One OpenAI endpoint over the scheduler: `handle` → `prepare` (thread) → `respond` or `stream`."""

    chat = False

    def __init__(self, context: Context) -> None:
        self.ctx = context

    # --- preparation (runs in the prepare pool) ---------------------------------------------------------

    @abstractmethod
    def prepare(self, raw: bytes, model: Model) -> Prepared:
        """Implemented by each endpoint."""

    def check_model(self, requested: str | None) -> None:
        if requested is not None and requested != self.ctx.served_model_name:
            raise APIError(404, f"The model `{requested}` does not exist.", type="NotFoundError", param="model",
                           code="model_not_found")  # fmt: skip

    def too_long(self, model: Model) -> None:
        self.ctx.metrics.rejected["context_length"].inc()
        raise APIError(
            400,
            f"This model's maximum context length is {model.context_length} tokens. However, your prompt is longer. "
            "Please reduce the length of the messages or prompt.",
            param="messages" if self.chat else "prompt",
            code="context_length_exceeded",
        )

    def sampling(self, body: SamplingFields, max_tokens: int | None, prompt_len: int, model: Model) -> SamplingParams:
        if body.n != 1:
            raise APIError(400, "Only n=1 is supported.", param="n")
        context = model.context_length
        param = "messages" if self.chat else "prompt"
        if prompt_len >= context:
            self.ctx.metrics.rejected["context_length"].inc()
            raise APIError(
                400,
                f"This model's maximum context length is {context} tokens. However, your prompt has {prompt_len} "
                "tokens. Please reduce the length of the messages or prompt.",
                param=param,
                code="context_length_exceeded",
            )
        if max_tokens is None:
            max_tokens = self.ctx.default_max_tokens or context - prompt_len
            max_tokens = min(max_tokens, context - prompt_len)
        elif prompt_len + max_tokens > context:
            self.ctx.metrics.rejected["context_length"].inc()
            raise APIError(
                400,
                f"This model's maximum context length is {context} tokens. However, you requested "
                f"{prompt_len + max_tokens} tokens ({prompt_len} in the prompt, {max_tokens} for the completion). "
                "Please reduce the prompt or max_tokens.",
                param="max_tokens",
                code="context_length_exceeded",
            )
        stops = body.stop_strings()
        for stop in stops:
            check_text(stop, "stop")
        # A stop string longer than the longest text max_tokens can decode to can never match: it is dropped,
        # so its matcher (set-up linear in its length) is never built.
        stops = tuple(stop for stop in stops if len(stop) <= max_tokens * model.max_token_chars)
        check_float32(body)
        try:
            guidance = guidance_for(body.response_format, self.ctx.guidance_limits)
        except APIError:
            self.ctx.metrics.rejected["schema_limit"].inc()
            raise
        min_tokens = max_tokens if body.ignore_eos else min(body.min_tokens, max_tokens)
        top_k = body.top_k if body.top_k is not None and body.top_k > 0 else None
        if top_k is not None:
            top_k = min(top_k, model.vocab_size)
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=top_k,
            seed=body.engine_seed(),
            stop=stops,
            min_tokens=min_tokens,
            repetition_penalty=body.repetition_penalty,
            guidance=guidance,
        )

    # --- the request ------------------------------------------------------------------------------------

    def _require(self) -> tuple[Model, JobRunner]:
        model, runner = self.ctx.model(), self.ctx.runner()
        if model is None or runner is None:
            raise APIError(
                503,
                "The model failed to load." if self.ctx.load_failed() else "The model is not loaded yet.",
                type="service_unavailable",
                code="model_not_ready",
                headers={"Retry-After": str(self.ctx.retry_after_seconds or 1)},
            )
        return model, runner

    async def handle(self, request: Request) -> Response:
        timings = Timings(arrival=time.monotonic())
        model, runner = self._require()
        ticket = self.ctx.admission.admit()
        try:
            raw = await request.body()
            loop = asyncio.get_running_loop()
            if len(raw) <= INLINE_PREPARE_BYTES:  # cheap: a thread hop would cost more than the work
                prepared = self.prepare(raw, model)
            else:
                prepared = await loop.run_in_executor(self.ctx.prepare_pool, self.prepare, raw, model)
        except BaseException:
            ticket.release()
            runner.wake()
            raise
        events: asyncio.Queue[Event] = asyncio.Queue()

        def sink(event: Event) -> None:
            if isinstance(event, Finished | Failed):
                ticket.release()
            with contextlib.suppress(RuntimeError):  # the loop is closed at shutdown
                loop.call_soon_threadsafe(events.put_nowait, event)

        job = Job(prepared.prompt_ids, prepared.params, timings, sink, matcher=prepared.matcher)
        if prepared.stream:
            job.first_delivered = threading.Event()
        ticket.prepared()  # before submitting: a batch start must not wait (gather) for this very request
        runner.submit(job)
        request_id = f"{'chatcmpl' if self.chat else 'cmpl'}-{uuid.uuid4().hex}"
        if prepared.stream:
            return await self.stream(request, runner, job, events, prepared, request_id)
        return await self.respond(request, runner, job, events, prepared, request_id)

    async def _next(self, request: Request, events: asyncio.Queue[Event], watch: _Watch) -> Event | None:
        """The next event; None when the client went away meanwhile (checked at least every 0.25 s)."""
        loop = asyncio.get_running_loop()
        while True:
            left = watch.next_check - loop.time()
            if left > 0:
                try:
                    return await asyncio.wait_for(events.get(), left)
                except TimeoutError:
                    pass
            watch.next_check = loop.time() + DISCONNECT_POLL_SECONDS
            if await request.is_disconnected():
                return None

    async def respond(
        self,
        request: Request,
        runner: JobRunner,
        job: Job,
        events: asyncio.Queue[Event],
        prepared: Prepared,
        request_id: str,
    ) -> Response:
        created = int(time.time())
        pieces: list[str] = [prepared.echo]
        watch = _Watch(asyncio.get_running_loop().time() + DISCONNECT_POLL_SECONDS)
        try:
            while True:
                event = await self._next(request, events, watch)
                if event is None:
                    runner.cancel(job)
                    return Response(status_code=499)
                if isinstance(event, Delta):
                    pieces.append(event.text)
                    continue
                break
        except BaseException:
            runner.cancel(job)
            raise
        if isinstance(event, Failed):
            return error_response(generation_failed(event, self.ctx.retry_after_seconds))
        return JSONResponse(self.body(request_id, created, "".join(pieces), event).model_dump(mode="json"))

    async def stream(
        self,
        request: Request,
        runner: JobRunner,
        job: Job,
        events: asyncio.Queue[Event],
        prepared: Prepared,
        request_id: str,
    ) -> Response:
        created = int(time.time())
        delivered = job.first_delivered or threading.Event()
        # Wait for the first event before answering: a request the engine refuses (a bad JSON schema) is
        # still an HTTP error, and a client gone while queued is noticed.
        try:
            first = await self._next(
                request, events, _Watch(asyncio.get_running_loop().time() + DISCONNECT_POLL_SECONDS)
            )
        except BaseException:
            delivered.set()
            runner.cancel(job)
            raise
        if first is None:
            delivered.set()
            runner.cancel(job)
            return Response(status_code=499)
        if isinstance(first, Failed):
            delivered.set()
            return error_response(generation_failed(first, self.ctx.retry_after_seconds))

        async def chunks() -> AsyncIterator[str]:
            event: Event = first
            try:
                for text in self.opening(request_id, created, prepared):
                    yield text
                while True:
                    if isinstance(event, Failed):
                        yield sse(generation_failed(event, self.ctx.retry_after_seconds).body())
                        return
                    if isinstance(event, Finished):
                        break
                    yield sse(self.chunk(request_id, created, event.text, None))
                    delivered.set()  # resumed once the chunk was sent: the scheduler may step on
                    event = await events.get()
                yield sse(self.chunk(request_id, created, None, event.finish_reason))
                if prepared.include_usage:
                    yield sse(self.usage_chunk(request_id, created, usage(event)))
                yield "data: [DONE]\n\n"
            finally:
                delivered.set()
                runner.cancel(job)

        return GuardedStreamingResponse(
            chunks(),
            on_close=lambda: runner.cancel(job),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # --- shapes -----------------------------------------------------------------------------------------

    @abstractmethod
    def body(self, request_id: str, created: int, text: str, done: Finished) -> BaseModel:
        """Implemented by each endpoint."""

    @abstractmethod
    def opening(self, request_id: str, created: int, prepared: Prepared) -> list[str]:
        """Implemented by each endpoint."""

    @abstractmethod
    def chunk(self, request_id: str, created: int, text: str | None, finish_reason: str | None) -> BaseModel:
        """Implemented by each endpoint."""

    @abstractmethod
    def usage_chunk(self, request_id: str, created: int, used: Usage) -> BaseModel:
        """Implemented by each endpoint."""


class ChatServing(Serving):
    chat = True

    def prepare(self, raw: bytes, model: Model) -> Prepared:
        body = parse_body(ChatCompletionRequest, raw)
        extra = body.model_extra or {}
        if extra.get("echo") not in (None, False):
            raise APIError(400, "`echo` is not supported for chat completions.", param="echo",
                           code="unsupported_parameter")  # fmt: skip
        self.check_model(body.model)
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        for message in messages:
            check_text(message["content"], "messages")
        if model.surely_too_long("".join(m["content"] for m in messages)):
            self.too_long(model)
        try:
            prompt = model.render_chat(messages)
        except Exception as error:  # the template itself failed: the request cannot be served as given
            raise APIError(400, f"Cannot apply the chat template: {error}", param="messages") from None
        prompt_ids = model.encode(prompt)
        params = self.sampling(body, body.max_completion_tokens or body.max_tokens, len(prompt_ids), model)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return Prepared(prompt_ids, params, body.stream, include_usage, matcher=StopMatcher(params.stop))

    def body(self, request_id: str, created: int, text: str, done: Finished) -> BaseModel:
        choice = ChatChoice(message=AssistantMessage(content=text), finish_reason=done.finish_reason)
        return ChatCompletionResponse(id=request_id, created=created, model=self.ctx.served_model_name,
                                      choices=[choice], usage=usage(done))  # fmt: skip

    def opening(self, request_id: str, created: int, prepared: Prepared) -> list[str]:
        role = ChatChunkChoice(delta=ChatDelta(role="assistant", content=""))
        first = ChatCompletionChunk(id=request_id, created=created, model=self.ctx.served_model_name, choices=[role])
        return [sse(first)]

    def chunk(self, request_id: str, created: int, text: str | None, finish_reason: str | None) -> BaseModel:
        choice = ChatChunkChoice(delta=ChatDelta(content=text), finish_reason=finish_reason)
        return ChatCompletionChunk(id=request_id, created=created, model=self.ctx.served_model_name, choices=[choice])

    def usage_chunk(self, request_id: str, created: int, used: Usage) -> BaseModel:
        return ChatCompletionChunk(id=request_id, created=created, model=self.ctx.served_model_name, choices=[],
                                   usage=used)  # fmt: skip


class CompletionServing(Serving):
    def prepare(self, raw: bytes, model: Model) -> Prepared:
        body = parse_body(CompletionRequest, raw)
        self.check_model(body.model)
        prompt = body.prompt
        texts = [prompt] if isinstance(prompt, str) else [p for p in prompt if isinstance(p, str)]
        if len(texts) > 1:
            raise APIError(400, "Only one prompt per request is supported.", param="prompt")
        if texts:
            check_text(texts[0], "prompt")
            if model.surely_too_long(texts[0]):
                self.too_long(model)
            prompt_ids = model.completion_prompt(texts[0])
        else:
            prompt_ids = [int(t) for t in prompt]
            vocab = model.vocab_size
            if not prompt_ids or any(t < 0 or t >= vocab for t in prompt_ids):
                raise APIError(400, f"Token ids must be between 0 and {vocab - 1}.", param="prompt")
        if not prompt_ids:
            raise APIError(400, "The prompt is empty.", param="prompt")
        params = self.sampling(body, body.max_tokens, len(prompt_ids), model)
        echo = ""
        if body.echo:
            echo = texts[0] if texts else model.decode(prompt_ids)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return Prepared(prompt_ids, params, body.stream, include_usage, echo, StopMatcher(params.stop))

    def body(self, request_id: str, created: int, text: str, done: Finished) -> BaseModel:
        choice = CompletionChoice(text=text, finish_reason=done.finish_reason)
        return CompletionResponse(id=request_id, created=created, model=self.ctx.served_model_name,
                                  choices=[choice], usage=usage(done))  # fmt: skip

    def opening(self, request_id: str, created: int, prepared: Prepared) -> list[str]:
        return [sse(self.chunk(request_id, created, prepared.echo, None))] if prepared.echo else []

    def chunk(self, request_id: str, created: int, text: str | None, finish_reason: str | None) -> BaseModel:
        choice = CompletionChoice(text=text or "", finish_reason=finish_reason)
        return CompletionResponse(id=request_id, created=created, model=self.ctx.served_model_name, choices=[choice])

    def usage_chunk(self, request_id: str, created: int, used: Usage) -> BaseModel:
        return CompletionResponse(id=request_id, created=created, model=self.ctx.served_model_name, choices=[],
                                  usage=used)  # fmt: skip
