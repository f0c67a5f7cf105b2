"""The HTTP layer: OpenAI-compatible routes, admission control (bounded concurrency and queue), metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import ConfigError, Settings, model_context_length
from .engine import Delta, Engine, Event, Finished, SamplingParams, Timings
from .metrics import Metrics
from .protocol import APIError, ChatCompletionRequest, CompletionRequest, SamplingFields

log = logging.getLogger("slm_onnx_server")
DISCONNECT_POLL_SECONDS = 0.25


class ClientGone(Exception):
    """The client closed the connection while its request waited or ran."""


class Admission:
    """At most `concurrency` generations at once and `queue` more waiting; beyond that, 429."""

    def __init__(self, concurrency: int, queue: int, metrics: Metrics, retry_after: int) -> None:
        self.concurrency = concurrency
        self.limit = concurrency + queue
        self.metrics = metrics
        self.retry_after = retry_after
        self.running = 0
        self.waiting = 0
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    def _publish(self) -> None:
        self.metrics.running.set(self.running)
        self.metrics.waiting.set(self.waiting)

    async def acquire(self, request: Request) -> None:
        if self.running + self.waiting >= self.limit:
            self.metrics.rejected["queue_full"].inc()
            raise APIError(
                429,
                f"The server is busy: {self.running} requests running and {self.waiting} waiting. Retry later.",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": str(self.retry_after)},
            )
        self.waiting += 1
        self._publish()
        try:
            await self._wait_for_slot(request)
        finally:
            self.waiting -= 1
            self._publish()
        self.running += 1
        self._publish()

    async def _wait_for_slot(self, request: Request) -> None:
        semaphore = self.semaphore
        if not semaphore.locked():
            await semaphore.acquire()
            return
        task = asyncio.ensure_future(semaphore.acquire())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
                if done:
                    task.result()
                    return
                if await request.is_disconnected():
                    raise ClientGone
        except BaseException:
            if task.done() and not task.cancelled() and task.exception() is None:
                semaphore.release()
            else:
                task.cancel()
            raise

    def release(self) -> None:
        self.running -= 1
        self.semaphore.release()
        self._publish()


class ApiKeyMiddleware:
    """`Authorization: Bearer <key>` on every /v1 route when a key is configured (health and metrics stay open)."""

    def __init__(self, app: ASGIApp, key: str, on_reject: Callable[[], None]) -> None:
        self.app = app
        self.expected = f"Bearer {key}".encode()
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1"):
            given = b""
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    given = value
                    break
            if not hmac.compare_digest(given, self.expected):
                self.on_reject()
                error = APIError(
                    401, "Invalid or missing API key.", type="authentication_error", code="invalid_api_key"
                )
                response = JSONResponse(error.body(), status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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


class Server:
    """The state behind the routes: settings, the engine once loaded, metrics, admission and the worker pool."""

    def __init__(self, settings: Settings, on_load_failure: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.load_error: str | None = None
        self.on_load_failure = on_load_failure
        self.api_key = settings.read_api_key()
        try:
            context = model_context_length(settings.model_path)
        except (OSError, ValueError, ConfigError):
            context = settings.context_length or 8192
        self.metrics = Metrics(settings.served_model_name, min(settings.context_length or context, context))
        self.admission = Admission(
            settings.max_concurrency, settings.max_queue, self.metrics, settings.retry_after_seconds
        )
        self.executor = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="generate")
        self.created = int(time.time())

    def load(self) -> None:
        """Load the model (runs in a thread at start-up, so /health answers 503 meanwhile)."""
        try:
            if self.settings.test_load_delay_seconds:
                time.sleep(self.settings.test_load_delay_seconds)
            started = time.monotonic()
            self.engine = Engine(self.settings)
            log.info(
                "model %s loaded from %s in %.2fs (context %d)",
                self.settings.served_model_name,
                self.settings.model_path,
                time.monotonic() - started,
                self.engine.context_length,
            )
        except Exception as error:  # any load failure: reported on /health, and the process exits
            self.load_error = f"{type(error).__name__}: {error}"
            log.error("cannot load the model from %s: %s", self.settings.model_path, self.load_error)
            if self.on_load_failure is not None:
                self.on_load_failure(self.load_error)

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise APIError(
                503,
                "The model is not loaded yet." if self.load_error is None else "The model failed to load.",
                type="service_unavailable",
                code="model_not_ready",
                headers={"Retry-After": str(self.settings.retry_after_seconds or 1)},
            )
        return self.engine

    def check_model(self, requested: str | None) -> None:
        if requested is not None and requested != self.settings.served_model_name:
            raise APIError(404, f"The model `{requested}` does not exist.", type="NotFoundError", param="model",
                           code="model_not_found")  # fmt: skip

    def sampling(self, body: SamplingFields, max_tokens: int | None, prompt_len: int, engine: Engine) -> SamplingParams:
        if body.n != 1:
            raise APIError(400, "Only n=1 is supported.", param="n")
        context = engine.context_length
        if prompt_len >= context:
            self.metrics.rejected["context_length"].inc()
            raise APIError(
                400,
                f"This model's maximum context length is {context} tokens. However, your prompt has {prompt_len} "
                "tokens. Please reduce the length of the messages or prompt.",
                param="messages" if isinstance(body, ChatCompletionRequest) else "prompt",
                code="context_length_exceeded",
            )
        if max_tokens is None:
            max_tokens = self.settings.default_max_tokens or context - prompt_len
            max_tokens = min(max_tokens, context - prompt_len)
        elif prompt_len + max_tokens > context:
            self.metrics.rejected["context_length"].inc()
            raise APIError(
                400,
                f"This model's maximum context length is {context} tokens. However, you requested "
                f"{prompt_len + max_tokens} tokens ({prompt_len} in the prompt, {max_tokens} for the completion). "
                "Please reduce the prompt or max_tokens.",
                param="max_tokens",
                code="context_length_exceeded",
            )
        min_tokens = max_tokens if body.ignore_eos else min(body.min_tokens, max_tokens)
        top_k = body.top_k if body.top_k is not None and body.top_k > 0 else None
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=top_k,
            seed=body.seed,
            stop=body.stop_strings(),
            min_tokens=min_tokens,
        )

    async def run(
        self,
        request: Request,
        prompt_ids: list[int],
        params: SamplingParams,
        timings: Timings,
        emit: Callable[[Event], None],
    ) -> tuple[threading.Event, asyncio.Future[Finished]]:
        """Wait for a slot (or 429), then start the generation in the pool; the slot is freed when it ends."""
        engine = self.require_engine()
        await self.admission.acquire(request)
        cancelled = threading.Event()

        def work() -> Finished:
            try:
                done = engine.generate(prompt_ids, params, timings, cancelled, emit)
            except BaseException:
                log.exception("generation failed")
                raise
            self.metrics.observe_finished(done, params.max_tokens)
            return done

        try:
            future = asyncio.get_running_loop().run_in_executor(self.executor, work)
        except BaseException:
            self.admission.release()
            raise
        future.add_done_callback(lambda _: self.admission.release())
        return cancelled, future


def _error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _usage(done: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n"


def create_app(settings: Settings, on_load_failure: Callable[[str], None] | None = None) -> FastAPI:
    server = Server(settings, on_load_failure)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = asyncio.create_task(asyncio.to_thread(server.load))
        yield
        if not loader.done():
            loader.cancel()
        server.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="slm-onnx-server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    if server.api_key is not None:
        app.add_middleware(
            ApiKeyMiddleware, key=server.api_key, on_reject=server.metrics.rejected["unauthorized"].inc
        )

    @app.exception_handler(APIError)
    async def api_error(_: Request, error: APIError) -> JSONResponse:
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        first = problems[0] if problems else {}
        where = [str(p) for p in first.get("loc", ()) if p != "body"]
        message = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', 'invalid')}"
            for e in problems[:5]
        )
        if first.get("type") == "json_invalid":
            return _error_response(APIError(400, "The request body is not valid JSON.", code="invalid_json"))
        return _error_response(APIError(400, message or "Invalid request body.", param=".".join(where) or None,
                                        code="invalid_value"))  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = "NotFoundError" if error.status_code == 404 else "invalid_request_error"
        return _error_response(APIError(error.status_code, str(error.detail), type=kind))

    @app.get("/health")
    async def health() -> JSONResponse:
        if server.engine is not None:
            return JSONResponse({"status": "ok"})
        if server.load_error is not None:
            return JSONResponse({"status": "error", "error": server.load_error}, status_code=503)
        return JSONResponse({"status": "loading"}, status_code=503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": settings.served_model_name,
            "object": "model",
            "created": server.created,
            "owned_by": "slm-deploy",
            "root": settings.served_model_name,
            "parent": None,
        }
        if server.engine is not None:
            entry["max_model_len"] = server.engine.context_length
        return {"object": "list", "data": [entry]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        timings = Timings(arrival=time.monotonic())
        engine = server.require_engine()
        server.check_model(body.model)
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        try:
            prompt = engine.render_chat(messages)
        except Exception as error:  # the template itself failed: the request cannot be served as given
            raise APIError(400, f"Cannot apply the chat template: {error}", param="messages") from None
        prompt_ids = engine.encode(prompt)
        params = server.sampling(body, body.max_completion_tokens or body.max_tokens, len(prompt_ids), engine)
        return await respond(request, body, prompt_ids, params, timings, chat=True)

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> Response:
        timings = Timings(arrival=time.monotonic())
        engine = server.require_engine()
        server.check_model(body.model)
        prompt = body.prompt
        texts = [prompt] if isinstance(prompt, str) else [p for p in prompt if isinstance(p, str)]
        if len(texts) > 1:
            raise APIError(400, "Only one prompt per request is supported.", param="prompt")
        if texts:
            prompt_ids = engine.completion_prompt(texts[0])
        else:
            prompt_ids = [int(t) for t in prompt]
            vocab = engine.vocab_size
            if not prompt_ids or any(t < 0 or t >= vocab for t in prompt_ids):
                raise APIError(400, f"Token ids must be between 0 and {vocab - 1}.", param="prompt")
        if not prompt_ids:
            raise APIError(400, "The prompt is empty.", param="prompt")
        params = server.sampling(body, body.max_tokens, len(prompt_ids), engine)
        return await respond(request, body, prompt_ids, params, timings, chat=False)

    async def respond(
        request: Request,
        body: SamplingFields,
        prompt_ids: list[int],
        params: SamplingParams,
        timings: Timings,
        chat: bool,
    ) -> Response:
        request_id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        model = settings.served_model_name
        loop = asyncio.get_running_loop()
        if body.stream:
            queue: asyncio.Queue[Event | None] = asyncio.Queue()

            def emit(event: Event) -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closed at shutdown
                    loop.call_soon_threadsafe(queue.put_nowait, event)

            try:
                cancelled, future = await server.run(request, prompt_ids, params, timings, emit)
            except ClientGone:
                return Response(status_code=499)

            def failed(done: asyncio.Future[Finished]) -> None:
                if done.cancelled() or done.exception() is not None:
                    queue.put_nowait(None)  # wakes the stream up: the generation died

            future.add_done_callback(failed)
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return GuardedStreamingResponse(
                stream_events(request, queue, cancelled, request_id, created, model, chat, include_usage),
                on_close=cancelled.set,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )

        pieces: list[str] = []

        def collect(event: Event) -> None:
            if isinstance(event, Delta):
                pieces.append(event.text)

        try:
            cancelled, future = await server.run(request, prompt_ids, params, timings, collect)
        except ClientGone:
            return Response(status_code=499)
        try:
            while True:
                done_set, _ = await asyncio.wait({future}, timeout=DISCONNECT_POLL_SECONDS)
                if done_set:
                    break
                if await request.is_disconnected():
                    cancelled.set()
                    return Response(status_code=499)
        finally:
            if not future.done():
                cancelled.set()
        try:
            done = future.result()
        except Exception:
            raise APIError(500, "Generation failed.", type="internal_error", code="generation_failed") from None
        text = "".join(pieces)
        usage = _usage(done)
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": done.finish_reason,
            }
            payload = {"id": request_id, "object": "chat.completion", "created": created, "model": model,
                       "choices": [choice], "usage": usage}  # fmt: skip
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": done.finish_reason}
            payload = {"id": request_id, "object": "text_completion", "created": created, "model": model,
                       "choices": [choice], "usage": usage}  # fmt: skip
        return JSONResponse(payload)

    async def stream_events(
        request: Request,
        queue: asyncio.Queue[Event | None],
        cancelled: threading.Event,
        request_id: str,
        created: int,
        model: str,
        chat: bool,
        include_usage: bool,
    ) -> AsyncIterator[str]:
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str | None, finish_reason: str | None, role: bool = False) -> dict[str, Any]:
            if chat:
                delta: dict[str, Any] = {}
                if role:
                    delta["role"] = "assistant"
                if text is not None:
                    delta["content"] = text
                choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            else:
                choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
            return {"id": request_id, "object": kind, "created": created, "model": model, "choices": [choice]}

        try:
            if chat:
                yield _sse(chunk("", None, role=True))
            while True:
                event = await queue.get()
                if event is None:
                    error = APIError(500, "Generation failed.", type="internal_error", code="generation_failed")
                    yield _sse(error.body())
                    return
                if isinstance(event, Finished):
                    break
                yield _sse(chunk(event.text, None))
                if await request.is_disconnected():
                    cancelled.set()
                    return
            yield _sse(chunk(None if chat else "", event.finish_reason))
            if include_usage:
                yield _sse({"id": request_id, "object": kind, "created": created, "model": model, "choices": [],
                            "usage": _usage(event)})  # fmt: skip
            yield "data: [DONE]\n\n"
        finally:
            cancelled.set()

    return app
