"""The scheduler: one thread owns og.Engine and runs static batches; seeded sampling goes to og.Generator.

og.Engine on CPU batches statically: a request added while a batch runs waits until the batch has ended.
So the scheduler itself holds new requests and starts them only at batch boundaries, which keeps the
`waiting` / `running` metrics truthful and lets a request still waiting be dropped without touching the
engine. When a batch starts and requests that were admitted are still being tokenised (`incoming()`), it
waits for them up to `gather_seconds` (default 5 ms), so a burst lands in one batch instead of a batch of
one plus a batch of the rest; with nothing incoming it starts at once (no added latency at concurrency 1).

Static batching alone makes a request that arrives mid-batch wait for the whole batch (up to max_tokens
steps). To bound that wait, a batch that has run `preempt_after_steps` steps while requests wait, and has a
slot to give (some of its requests finished, or it started under-full), is ended early: its unfinished
requests are parked with what they generated so far and resumed in the next batch, first in line, by a new
turn whose prompt is the original prompt plus the tokens already generated (a re-prefill, which costs about
one step on a small model). Greedy decoding resumes to the same tokens; sampling resumes from the same
distribution.

Guided requests (JSON schema) go to og.Generator, like seeded sampling, so they never hold an og.Engine batch
hostage: a parked guided request could not resume (og.Engine 0.18 starts a turn's grammar from scratch and
has no way to feed it the tokens already produced), and a grammar failing in og.Engine (llguidance's parse
row limit) made the whole engine unhealthy. `guided_on_generator=False` batches them in og.Engine instead
(more guided throughput); a batch holding one is then never parked.

Engine failures: every og.Engine call (`create_request` included) runs inside the batch's error path. A
request the engine refuses (`begin_turn` or a turn option raising, a request-level failure event) fails alone
with a 400. Anything else that raises, or an event saying the engine failed, fails the batch's requests with
a 503 (`Failed(status=503)`: the client may retry), requests that had not started yet go back to the queue,
and the scheduler builds a new og.Engine from the loaded model (`backend_factory` again; `on_rebuild`). After
`max_rebuilds` rebuilds, or when a rebuild fails, `healthy` turns False: /health answers 503 so the liveness
probe restarts the pod, and every request the engine would serve gets a 503 at once.

Per request: sampling options, max/min generated tokens, repetition penalty and guidance (JSON schema)
are turn options; stop strings are matched here (og.Engine's need dynamic batching) and end the turn with
`cancel_turn`; a cancelled job (client gone) is cancelled the same way before the next step. Everything
og.* runs on the scheduler's thread; the HTTP side only calls `submit` and sets `Job.cancelled`.

The engine-facing parts are behind `EngineBackend` so tests can drive the scheduler without a model.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from .engine import Delta, Engine, Failed, Finished, Job, first_line
from .stops import StopMatcher

log = logging.getLogger("slm_onnx_server.scheduler")


@dataclass(frozen=True)
class StepEvent:
    """One engine event, reduced to what the scheduler needs."""

    handle: object  # the backend's request handle
    token: int | None  # a generated token, or None
    finished: str | None  # None, or eos | stop_string | max_tokens | cancelled | failed
    generated_tokens: int = 0


class EngineFailure(RuntimeError):
    """og.Engine failed as a whole: the batch ends and the engine is rebuilt.

    `culprit`: the failure came from starting the request being begun (not from a call any request would have
    failed), so that request is answered rather than retried on the rebuilt engine.
    """

    def __init__(self, message: str, culprit: bool = False) -> None:
        super().__init__(message)
        self.culprit = culprit


#: og.Engine error codes of a failure event that concern the engine, not the request.
ENGINE_ERROR_CODES = ("ENGINE_EXECUTION_FAILURE", "ENGINE_CONTRACT_FAILURE")


class EngineBackend(Protocol):
    """What the scheduler needs from og.Engine (tests substitute a fake)."""

    def begin(self, job: Job, generated: Sequence[int] = ()) -> object:
        """Start `job`'s turn, resuming after `generated` (tokens it produced before being parked).

        Raises ValueError when the request cannot be served, EngineFailure (or anything else) when the engine
        failed.
        """
        ...

    def step(self) -> Sequence[StepEvent]: ...

    def has_pending(self) -> bool: ...

    def cancel(self, handle: object) -> None: ...

    def close(self, handle: object) -> None: ...

    def decoder(self) -> Callable[[int], str]: ...

    def is_eos(self, token: int) -> bool: ...


class OgEngineBackend:
    """og.Engine behind `EngineBackend`; call only from the scheduler's thread."""

    def __init__(self, engine: Engine) -> None:
        import numpy as np
        import onnxruntime_genai as og

        self._np = np
        self._og = og
        self.runtime = engine
        self.engine = og.Engine(engine.model)
        self.buffer = self.engine.create_event_buffer(max(64, 4 * engine.max_batch_size))
        self._turns: dict[int, int] = {}
        self.batch_size = self._measure_batch(engine.max_batch_size)
        self._finish = {
            og.FinishReason.EOS: "eos",
            og.FinishReason.STOP_STRING: "stop_string",
            og.FinishReason.MAX_GENERATED_TOKENS: "max_tokens",
            og.FinishReason.MAX_SESSION_TOKENS: "max_tokens",
            og.FinishReason.CANCELLED: "cancelled",
            og.FinishReason.FAILED: "failed",
        }

    def _measure_batch(self, wanted: int) -> int:
        """How many requests og.Engine really runs in one static batch (at most `wanted`).

        onnxruntime-genai 0.18 on CPU ran batches of 4 whatever `engine.static_batching.max_batch_size` said
        (in the overlay or in genai_config.json). A scheduler batch larger than the engine's would run as
        several engine batches one after the other, the later requests waiting for the earlier ones to end, so
        the scheduler must know the real figure: one step of `wanted` one-token requests shows it.
        """
        og, np = self._og, self._np
        requests = []
        for _ in range(wanted):
            request = self.engine.create_request()
            options = og.TurnOptions(request)
            options.set_max_generated_tokens(1)
            options.set_do_sample(False)
            request.begin_turn(np.asarray([self.runtime.bos_token_id], dtype=np.int32), options)
            requests.append(request)
        try:
            first = sum(1 for event in self.engine.run(self.buffer) if event.flags & og.EngineEventFlags.TOKEN)
            while self.engine.has_pending_requests():
                for _ in self.engine.run(self.buffer):
                    pass
        finally:
            for request in requests:
                request.close()
        return max(1, min(wanted, first))

    def begin(self, job: Job, generated: Sequence[int] = ()) -> object:
        try:
            request = self.engine.create_request()  # raises once the engine is unhealthy
        except RuntimeError as error:
            raise EngineFailure(first_line(error)) from None
        try:
            turn = self._begin_turn(request, job, generated)
        except RuntimeError as error:
            request.close()
            if "no longer healthy" in str(error):
                raise EngineFailure(first_line(error), culprit=True) from None
            raise ValueError(first_line(error)) from None
        self._turns[id(request)] = int(turn)
        return request

    def _begin_turn(self, request: object, job: Job, generated: Sequence[int]) -> int:
        og = self._og
        params = job.params
        options = og.TurnOptions(request)
        options.set_max_generated_tokens(params.max_tokens - len(generated))
        if params.min_tokens > len(generated):
            options.set_min_generated_tokens(params.min_tokens - len(generated))
        if params.temperature <= 0.0:
            options.set_do_sample(False)
        else:
            options.set_do_sample(True)
            options.set_temperature(params.temperature)
            options.set_top_p(params.top_p)
            options.set_top_k(min(params.top_k, self.runtime.vocab_size) if params.top_k else 0)
        if params.repetition_penalty != 1.0:
            options.set_repetition_penalty(params.repetition_penalty)
        if params.guidance is not None:
            options.set_guidance(*params.guidance)
        prompt = self._np.asarray([*job.prompt_ids, *generated], dtype=self._np.int32)
        return int(request.begin_turn(prompt, options))  # type: ignore[attr-defined]

    def step(self) -> Sequence[StepEvent]:
        og = self._og
        out: list[StepEvent] = []
        for event in self.engine.run(self.buffer):
            flags = event.flags
            token = event.token if flags & og.EngineEventFlags.TOKEN else None
            finished: str | None = None
            generated = 0
            if flags & (og.EngineEventFlags.TURN_FINISHED | og.EngineEventFlags.FAILED):
                if getattr(event.error_code, "name", "") in ENGINE_ERROR_CODES:
                    raise EngineFailure(f"og.Engine reported {event.error_code.name}")
                finished = self._finish.get(event.finish_reason, "failed")
                generated = int(event.usage.generated_tokens)
            out.append(StepEvent(event.request, None if token is None else int(token), finished, generated))
        return out

    def has_pending(self) -> bool:
        return bool(self.engine.has_pending_requests())

    def cancel(self, handle: object) -> None:
        turn = self._turns.get(id(handle))
        if turn is not None:
            handle.cancel_turn(turn)  # type: ignore[attr-defined]

    def close(self, handle: object) -> None:
        self._turns.pop(id(handle), None)
        handle.close()  # type: ignore[attr-defined]

    def decoder(self) -> Callable[[int], str]:
        stream = self.runtime.tokenizer.create_stream()
        return lambda token: str(stream.decode(token))

    def is_eos(self, token: int) -> bool:
        return token in self.runtime.eos_token_ids


@dataclass
class _Active:
    job: Job
    handle: object
    decode: Callable[[int], str]
    matcher: StopMatcher
    count: int = 0
    eos: bool = False  # an end-of-sequence token came as a token event
    done: bool = False  # finished for the client (stop string, cancelled); the engine may still send events
    parked: bool = False  # its turn was ended to free the batch; it resumes in the next one
    sent_text: bool = False  # some text went to the sink already
    generated: list[int] = field(default_factory=list)  # token ids so far (what a resumed turn re-reads)
    turn_base: int = 0  # tokens generated before the current turn (engine usage counts the turn only)

    @property
    def live(self) -> bool:
        return not self.done and not self.parked


class Scheduler:
    """Static batches on og.Engine in one thread, og.Generator for seeded sampling in a small pool."""

    def __init__(
        self,
        backend_factory: Callable[[], EngineBackend],
        max_batch_size: int,
        *,
        gather_seconds: float = 0.005,
        incoming: Callable[[], int] = lambda: 0,
        on_finished: Callable[[Finished, int], None] = lambda done, max_tokens: None,
        on_batch: Callable[[int], None] = lambda size: None,
        generator: Callable[[Job], Finished | Failed] | None = None,
        generator_workers: int = 1,
        token_delay: float = 0.0,
        preempt_after_steps: int = 0,
        on_preempt: Callable[[int], None] = lambda count: None,
        first_token_wait: float = 0.01,
        guided_on_generator: bool = True,
        max_rebuilds: int = 3,
        on_rebuild: Callable[[], None] = lambda: None,
    ) -> None:
        self.backend_factory = backend_factory
        self.max_batch_size = max_batch_size
        self.gather_seconds = gather_seconds
        self.incoming = incoming
        self.on_finished = on_finished
        self.generator = generator
        self.on_batch = on_batch
        self.token_delay = token_delay
        self.preempt_after_steps = preempt_after_steps  # 0: batches always run to their end
        self.on_preempt = on_preempt
        self.first_token_wait = first_token_wait  # at most this long for a first token to reach its client
        self.guided_on_generator = guided_on_generator and generator is not None
        self.max_rebuilds = max_rebuilds
        self.on_rebuild = on_rebuild
        self.rebuilds = 0
        self.failure: str | None = None  # why og.Engine is out of service for good (healthy is False)
        self._cond = threading.Condition()
        self._pending: collections.deque[Job] = collections.deque()
        self._parked: dict[int, _Active] = {}  # by id(job): progress of pending jobs that were parked
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: Exception | None = None
        self._pool = ThreadPoolExecutor(max_workers=generator_workers, thread_name_prefix="generator")
        self.batch_running = 0  # jobs of the current batch still generating for their client
        self.batch_size = 0  # jobs the current batch started with (slots in use until it ends)
        self.generator_running = 0
        self.generator_waiting = 0
        self.batches = 0

    # --- state, read by the metrics (any thread) --------------------------------------------------------

    @property
    def running(self) -> int:
        return self.batch_running + self.generator_running

    @property
    def waiting(self) -> int:
        return len(self._pending) + self.generator_waiting

    @property
    def healthy(self) -> bool:
        return self.failure is None

    # --- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the engine thread; returns once it has created its backend (og.Engine is bound to it)."""
        self._thread = threading.Thread(target=self._loop, name="og-engine", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- submission (any thread) ------------------------------------------------------------------------

    def on_generator(self, job: Job) -> bool:
        """Whether `job` runs on og.Generator: seeded sampling, and guided requests unless they are batched."""
        params = job.params
        return self.generator is not None and (
            params.needs_generator or (self.guided_on_generator and params.guidance is not None)
        )

    def submit(self, job: Job) -> None:
        if self.on_generator(job):
            with self._cond:
                self.generator_waiting += 1
            self._pool.submit(self._run_generator, job)
            return
        with self._cond:
            if self.failure is None:
                self._pending.append(job)
                self._cond.notify_all()
                return
        job.sink(self._out_of_service())

    def _out_of_service(self) -> Failed:
        return Failed(f"The engine is out of service ({self.failure}); the server is restarting.", 503)

    def cancel(self, job: Job) -> None:
        """The client went away: drop the job if it still waits, else its turn ends before the next step."""
        job.cancelled.set()
        with self._cond:
            try:
                self._pending.remove(job)
            except ValueError:
                return
            parked = self._parked.pop(id(job), None)
        now = time.monotonic()
        job.timings.scheduled = job.timings.scheduled or now
        job.timings.finished = now
        done = Finished("abort", len(job.prompt_ids), parked.count if parked else 0, job.timings)
        job.sink(done)
        self.on_finished(done, job.params.max_tokens)

    def wake(self) -> None:
        """A request stopped being incoming (tokenised, or refused): a gathering batch need not wait for it."""
        with self._cond:
            self._cond.notify_all()

    def _run_generator(self, job: Job) -> None:
        assert self.generator is not None
        with self._cond:
            self.generator_waiting -= 1
            self.generator_running += 1
        try:
            if job.cancelled.is_set():
                job.timings.scheduled = job.timings.finished = time.monotonic()
                done: Finished | Failed = Finished("abort", len(job.prompt_ids), 0, job.timings)
                job.sink(done)
            else:
                done = self.generator(job)
            if isinstance(done, Finished):
                self.on_finished(done, job.params.max_tokens)
        except Exception as error:  # never leave a client waiting
            log.exception("generation failed")
            job.sink(Failed(f"Generation failed: {type(error).__name__}"))
        finally:
            with self._cond:
                self.generator_running -= 1

    # --- the engine thread ------------------------------------------------------------------------------

    def _take_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            deadline = time.monotonic() + self.gather_seconds
            while len(self._pending) < self.max_batch_size and self.incoming() > 0 and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch: list[Job] = []
            while self._pending and len(batch) < self.max_batch_size:
                batch.append(self._pending.popleft())
            # Count them as running before they leave `pending`: the metrics never see a request in neither.
            self.batch_running = self.batch_size = len(batch)
            return batch

    def _loop(self) -> None:
        try:
            backend = self.backend_factory()
        except Exception as error:
            self._start_error = error
            self._ready.set()
            return
        # The engine's real static batch may be smaller than asked (see OgEngineBackend._measure_batch).
        engine_batch = getattr(backend, "batch_size", self.max_batch_size)
        if engine_batch < self.max_batch_size:
            log.warning("og.Engine runs batches of %d, not %d: batches are capped", engine_batch, self.max_batch_size)
            self.max_batch_size = engine_batch
        self._ready.set()
        live: EngineBackend | None = backend
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if live is None:  # out of service: answer at once, never hold a request
                for job in batch:
                    job.sink(self._out_of_service())
                with self._cond:
                    self.batch_running = self.batch_size = 0
                continue
            self.on_batch(len(batch))
            try:
                self._run_batch(live, batch)
            except Exception as error:
                log.error("og.Engine failed: %s", first_line(error), exc_info=not isinstance(error, EngineFailure))
                live = self._rebuild(first_line(error))
            finally:
                with self._cond:
                    self.batch_running = self.batch_size = 0
                self.batches += 1

    def _rebuild(self, reason: str) -> EngineBackend | None:
        """A new og.Engine after a failure; None (and `healthy` False) beyond `max_rebuilds` or if it fails."""
        if self.rebuilds >= self.max_rebuilds:
            self._give_up(f"og.Engine failed after {self.rebuilds} rebuilds: {reason}")
            return None
        self.rebuilds += 1
        try:
            backend = self.backend_factory()
        except Exception as error:
            log.exception("rebuilding og.Engine failed")
            self._give_up(f"og.Engine failed ({reason}) and could not be rebuilt: {first_line(error)}")
            return None
        log.warning("og.Engine rebuilt (%d of at most %d): %s", self.rebuilds, self.max_rebuilds, reason)
        try:
            self.on_rebuild()
        except Exception:
            log.exception("metrics update failed")
        return backend

    def _give_up(self, reason: str) -> None:
        log.error("og.Engine out of service: %s", reason)
        with self._cond:
            self.failure = reason
            waiting = list(self._pending)
            self._pending.clear()
            self._parked.clear()
        for job in waiting:
            job.sink(self._out_of_service())

    def _finish(self, active: _Active, reason: str) -> None:
        job = active.job
        active.done = True
        if reason != "abort":
            rest = active.matcher.flush()
            if rest:
                job.sink(Delta(rest))
        job.timings.finished = time.monotonic()
        done = Finished(reason, len(job.prompt_ids), active.count, job.timings)
        job.sink(done)
        with self._cond:
            self.batch_running -= 1
        try:
            self.on_finished(done, job.params.max_tokens)
        except Exception:
            log.exception("metrics update failed")

    def _run_batch(self, backend: EngineBackend, batch: Iterable[Job]) -> None:
        by_handle: dict[int, _Active] = {}
        jobs = collections.deque(batch)
        steps = 0
        try:
            self._begin_all(backend, jobs, by_handle)
            while backend.has_pending():
                for active in by_handle.values():
                    if active.live and active.job.cancelled.is_set():
                        backend.cancel(active.handle)
                        self._finish(active, "abort")
                if steps >= self.preempt_after_steps and self._should_park(by_handle.values()):
                    self._park(backend, by_handle.values())
                events = backend.step()
                steps += 1
                stamp = time.monotonic()
                firsts: list[threading.Event] = []
                for event in events:
                    found = by_handle.get(id(event.handle))
                    if found is None or not found.live:
                        continue
                    if self._on_event(backend, found, event, stamp) and found.job.first_delivered is not None:
                        firsts.append(found.job.first_delivered)
                self._await_delivery(firsts)
                if self.token_delay:
                    time.sleep(self.token_delay)
        except Exception:
            # The engine failed under this batch: its requests get a 503 (they may retry on the rebuilt engine);
            # those not started yet go back to the queue, first in line.
            for active in by_handle.values():
                if not active.done:
                    active.done = True
                    active.job.sink(Failed("The engine failed during generation; retry the request.", 503))
                    if not active.parked:
                        with self._cond:
                            self.batch_running -= 1
            with self._cond:
                self.batch_running -= len(jobs)
                self._pending.extendleft(reversed(jobs))
            raise
        finally:
            for active in by_handle.values():
                if active.live:
                    self._finish(active, "abort")
                try:
                    backend.close(active.handle)
                except Exception:  # a failed engine may refuse to close its requests; it is dropped anyway
                    log.debug("closing a request failed", exc_info=True)
            self._requeue([a for a in by_handle.values() if a.parked and not a.done])

    def _begin_all(self, backend: EngineBackend, jobs: collections.deque[Job], by_handle: dict[int, _Active]) -> None:
        """Start each job's turn (taking it off `jobs`); a request the engine refuses fails alone with a 400."""
        now = time.monotonic()
        while jobs:
            job = jobs[0]
            with self._cond:
                resumed = self._parked.get(id(job))
            job.timings.scheduled = job.timings.scheduled or now
            if job.cancelled.is_set():
                jobs.popleft()
                with self._cond:
                    self._parked.pop(id(job), None)
                placeholder = resumed or _Active(job, None, lambda token: "", StopMatcher(()))
                self._finish(placeholder, "abort")
                continue
            try:
                handle = backend.begin(job, resumed.generated if resumed else ())
            except (ValueError, EngineFailure) as error:
                if isinstance(error, EngineFailure) and not error.culprit:
                    raise  # not this request's doing: it goes back to the queue for the rebuilt engine
                jobs.popleft()
                with self._cond:
                    self._parked.pop(id(job), None)
                    self.batch_running -= 1
                if isinstance(error, EngineFailure):
                    job.sink(Failed("The engine failed starting this request; retry it.", 503))
                    raise
                job.sink(Failed(f"The request cannot be served: {error}", 400))
                continue
            jobs.popleft()
            with self._cond:
                self._parked.pop(id(job), None)
            if resumed is None:
                active = _Active(job, handle, backend.decoder(), job.stop_matcher())
            else:
                active = resumed
                active.handle, active.parked, active.turn_base = handle, False, len(active.generated)
            by_handle[id(handle)] = active

    def _await_delivery(self, firsts: list[threading.Event]) -> None:
        """Give the event loop the GIL until these first tokens are sent (bounded), before the next step."""
        deadline = time.monotonic() + self.first_token_wait
        for delivered in firsts:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            delivered.wait(left)

    def _should_park(self, actives: Iterable[_Active]) -> bool:
        """End the batch early when requests wait, it has a slot to give them, and nobody in it is guided."""
        if not self.preempt_after_steps:
            return False
        live = [a for a in actives if a.live and not a.eos]
        if not live or any(a.job.params.guidance is not None for a in live):
            return False
        with self._cond:
            waiting = any(id(job) not in self._parked for job in self._pending)
        return waiting and len(live) < self.max_batch_size

    def _park(self, backend: EngineBackend, actives: Iterable[_Active]) -> None:
        parked = 0
        for active in actives:
            if active.live and not active.eos:
                backend.cancel(active.handle)  # the engine's cancelled-turn events are ignored from now on
                active.parked = True
                parked += 1
                with self._cond:
                    self.batch_running -= 1
        self.on_preempt(parked)

    def _requeue(self, parked: list[_Active]) -> None:
        """Parked jobs go back first in line, in the order they had, for the next batch to resume them."""
        with self._cond:
            for active in reversed(parked):
                self._parked[id(active.job)] = active
                self._pending.appendleft(active.job)
            if parked:
                self._cond.notify_all()

    def _on_event(self, backend: EngineBackend, active: _Active, event: StepEvent, stamp: float) -> bool:
        """Handle one engine event; True when it sent the job's first text to the sink."""
        job = active.job
        first_text = False
        if event.token is not None:
            active.count += 1
            active.generated.append(event.token)
            job.timings.token(stamp)
            if backend.is_eos(event.token):
                active.eos = True
            else:
                text, hit = active.matcher.feed(active.decode(event.token))
                if text:
                    job.sink(Delta(text))
                    first_text, active.sent_text = not active.sent_text, True
                if hit:
                    backend.cancel(active.handle)
                    self._finish(active, "stop")
                    return first_text
        if event.finished is None:
            return first_text
        if event.finished == "failed":
            active.done = True
            job.sink(Failed("Generation failed."))
            with self._cond:
                self.batch_running -= 1
            return first_text
        # og.Engine counts no end-of-sequence token; vLLM (and this server's docs) count it.
        active.count = max(active.count, active.turn_base + event.generated_tokens)
        if event.finished == "eos" and not active.eos:
            active.count += 1
            job.timings.token(stamp)  # the end-of-sequence token was generated at this step
        reasons = {"max_tokens": "length", "cancelled": "abort"}
        self._finish(active, reasons.get(event.finished, "stop"))
        return first_text
