"""The HTTP layer: the app, its middlewares and a small router over the serving layer (serving.py).

Order of work for a /v1 POST: API key (auth.py) → body read with a size and time bound (limits.py) →
admission (admission.py, 429 beyond the bound) → parsing, chat template and tokenisation in a thread pool →
the scheduler (scheduler.py: og.Engine static batches, og.Generator for seeded sampling) → the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from .admission import Admission
from .auth import ApiKeyMiddleware
from .config import ConfigError, Settings, model_context_length
from .engine import Engine, Finished
from .guidance import GuidanceLimits
from .limits import BodyBudget, BodyLimitMiddleware
from .metrics import Metrics
from .protocol import APIError
from .scheduler import OgEngineBackend, Scheduler
from .serving import ChatServing, CompletionServing, Context, error_response

log = logging.getLogger("slm_onnx_server")


class Server:
    """The state behind the routes: settings, the model once loaded, the scheduler, admission and metrics."""

    def __init__(self, settings: Settings, on_load_failure: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.scheduler: Scheduler | None = None
        self.load_error: str | None = None
        self.on_load_failure = on_load_failure
        self.api_keys = settings.read_api_keys()
        try:
            context = model_context_length(settings.model_path)
        except (OSError, ValueError, ConfigError):
            context = settings.context_length or 8192
        self.metrics = Metrics(settings.served_model_name, min(settings.context_length or context, context))
        self.admission = Admission(
            settings.max_batch_size,
            settings.max_queue,
            settings.retry_after_seconds,
            on_reject=self.metrics.rejected["queue_full"].inc,
        )
        self.prepare_pool = ThreadPoolExecutor(max_workers=settings.preprocess_workers, thread_name_prefix="prepare")
        self.metrics.running.set_function(lambda: self.scheduler.running if self.scheduler else 0)
        self.metrics.waiting.set_function(
            lambda: (self.scheduler.waiting if self.scheduler else 0) + self.admission.preparing
        )
        self.metrics.batch_size.set_function(lambda: self.scheduler.batch_size if self.scheduler else 0)
        self.metrics.max_batch_size.set_function(
            lambda: self.scheduler.max_batch_size if self.scheduler else settings.max_batch_size
        )
        self.created = int(time.time())
        context_of_serving = Context(
            served_model_name=settings.served_model_name,
            default_max_tokens=settings.default_max_tokens,
            retry_after_seconds=settings.retry_after_seconds,
            admission=self.admission,
            metrics=self.metrics,
            prepare_pool=self.prepare_pool,
            model=lambda: self.engine,
            runner=lambda: self.scheduler,
            load_failed=lambda: self.load_error is not None,
            guidance_limits=GuidanceLimits(
                max_bytes=settings.max_schema_bytes,
                max_properties=settings.max_schema_properties,
                max_depth=settings.max_schema_depth,
            ),
        )
        self.body_budget = BodyBudget(settings.max_buffered_bytes)
        self.metrics.engine_healthy.set_function(lambda: 1 if self.failure() is None else 0)
        self.chat = ChatServing(context_of_serving)
        self.completions = CompletionServing(context_of_serving)

    def load(self) -> None:
        """Load the model and start the scheduler (in a thread at start-up: /health answers 503 meanwhile)."""
        try:
            if self.settings.test_load_delay_seconds:
                time.sleep(self.settings.test_load_delay_seconds)
            started = time.monotonic()
            engine = Engine(self.settings)
            scheduler = Scheduler(
                lambda: OgEngineBackend(engine),  # og.Engine belongs to the thread that creates it
                self.settings.max_batch_size,
                gather_seconds=self.settings.batch_gather_seconds,
                incoming=lambda: self.admission.preparing,
                on_finished=self.on_finished,
                on_batch=lambda size: self.metrics.batches.inc(),
                generator=engine.generate,
                generator_workers=self.settings.generator_workers,
                token_delay=self.settings.test_token_delay_seconds,
                preempt_after_steps=self.settings.preempt_after_steps,
                on_preempt=self.metrics.preemptions.inc,
                guided_on_generator=not self.settings.guided_batching,
                max_rebuilds=self.settings.engine_max_rebuilds,
                on_rebuild=self.metrics.engine_rebuilds.inc,
            )
            scheduler.start()  # a failure to create og.Engine is a load failure
            self.scheduler = scheduler
            self.engine = engine
            log.info(
                "model %s loaded from %s in %.2fs (context %d, batch %d)",
                self.settings.served_model_name,
                self.settings.model_path,
                time.monotonic() - started,
                engine.context_length,
                self.settings.max_batch_size,
            )
        except Exception as error:  # any load failure: reported on /health, and the process exits
            self.load_error = f"{type(error).__name__}: {error}"
            log.error("cannot load the model from %s: %s", self.settings.model_path, self.load_error)
            if self.on_load_failure is not None:
                self.on_load_failure(self.load_error)

    def failure(self) -> str | None:
        """Why the server cannot serve: the model failed to load, or og.Engine failed beyond its rebuilds."""
        if self.load_error is not None:
            return self.load_error
        return self.scheduler.failure if self.scheduler is not None else None

    def on_finished(self, done: Finished, max_tokens: int) -> None:
        self.metrics.observe_finished(done, max_tokens)

    def shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.prepare_pool.shutdown(wait=False, cancel_futures=True)


def build_router(server: Server) -> APIRouter:
    router = APIRouter()
    settings = server.settings

    @router.get("/health")
    async def health() -> JSONResponse:
        failure = server.failure()
        if failure is not None:  # the liveness probe restarts the pod
            return JSONResponse({"status": "error", "error": failure}, status_code=503)
        if server.engine is not None:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "loading"}, status_code=503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/v1/models")
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

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        return await server.chat.handle(request)

    @router.post("/v1/completions", response_model=None)
    async def completions(request: Request) -> Response:
        return await server.completions.handle(request)

    return router


def create_app(settings: Settings, on_load_failure: Callable[[str], None] | None = None) -> FastAPI:
    server = Server(settings, on_load_failure)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = asyncio.create_task(asyncio.to_thread(server.load))
        yield
        if not loader.done():
            loader.cancel()
        server.shutdown()

    app = FastAPI(title="slm-onnx-server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    app.include_router(build_router(server))

    def rejected(reason: str) -> None:
        server.metrics.rejected[reason].inc()

    # Added last = runs first: the key is checked before any body is read.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout_seconds,
        on_reject=rejected,
        budget=server.body_budget,
        retry_after=settings.retry_after_seconds,
    )
    if server.api_keys:
        app.add_middleware(
            ApiKeyMiddleware, keys=list(server.api_keys.values()), on_reject=server.metrics.rejected["unauthorized"].inc
        )

    @app.exception_handler(APIError)
    async def api_error(_: Request, error: APIError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = "NotFoundError" if error.status_code == 404 else "invalid_request_error"
        return error_response(APIError(error.status_code, str(error.detail), type=kind))

    return app
