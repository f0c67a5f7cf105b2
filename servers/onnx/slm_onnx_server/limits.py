"""Limits on what a client can make the server hold: body bytes (each and all together), read time, headers.

- `BodyLimitMiddleware` reads the body of every POST before the route sees it, within a byte budget shared by
  all connections (`max_buffered`): a body is admitted before it is read. With a `Content-Length` the whole
  declared size is reserved before the first byte is read (more than `max_bytes` is a 413 at once, more than
  the budget has left a 429 with `Retry-After` at once); a chunked body reserves as it arrives (the same 413 or
  429 as soon as it would pass either bound). The reservation is given back when the response has been sent.
  A body not complete within `timeout` seconds is a 408. Until the middleware reads, uvicorn buffers at most
  64 KiB per connection (it stops reading the socket above that), and uvicorn's `limit_concurrency` bounds
  the connections (`__main__.py`), so memory held for bodies is bounded by the budget plus connections x 64
  KiB. The route then reads the buffered body; disconnect detection still reaches the real connection.
- `header_timeout_protocol` is uvicorn's h11 protocol with a deadline for the request line and headers
  (uvicorn has none: its keep-alive timeout covers only idle connections between requests): a connection
  that has not sent complete headers within the deadline is closed. The deadline is not extended by bytes
  that trickle in. h11 itself bounds the header size (16 KiB by default: uvicorn's
  `h11_max_incomplete_event_size`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h11
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .protocol import APIError


class BodyBudget:
    """Bytes of request bodies the server may hold at once (event-loop only: no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout: float,
        on_reject: Callable[[str], None],
        budget: BodyBudget,
        retry_after: int,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.on_reject = on_reject
        self.budget = budget
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = max(0, int(value))
                except ValueError:
                    declared = None
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        reserved = 0
        try:
            if declared is not None:
                if not self.budget.take(declared):
                    await self._busy(scope, receive, send)
                    return
                reserved = declared
            body = await self._read(scope, receive, send, declared)
            if body is None:
                return
            if declared is None:
                reserved = len(body)  # taken chunk by chunk in _read
            delivered = False

            async def replay() -> Message:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.budget.give(reserved)

    async def _read(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> bytes | None:
        """The whole body, or None when an answer was sent instead (or the client left)."""
        body = bytearray()
        taken = 0  # chunked bodies: what this read took from the budget so far
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            while True:
                left = deadline - loop.time()
                try:
                    if left <= 0:
                        raise TimeoutError
                    message = await asyncio.wait_for(receive(), left)
                except TimeoutError:
                    self.on_reject("timeout")
                    error = APIError(408, f"The request body was not received within {self.timeout:g} s.",
                                     code="request_timeout")  # fmt: skip
                    await JSONResponse(error.body(), 408, headers={"Connection": "close"})(scope, receive, send)
                    return None
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                if len(body) + len(chunk) > (self.max_bytes if declared is None else declared):
                    # uvicorn refuses more bytes than Content-Length itself; only a chunked body gets here
                    await self._too_large(scope, receive, send)
                    return None
                if declared is None:
                    if not self.budget.take(len(chunk)):
                        await self._busy(scope, receive, send)
                        return None
                    taken += len(chunk)
                body += chunk
                if not message.get("more_body", False):
                    taken = 0  # kept: the caller gives it back once the response is sent
                    return bytes(body)
        finally:
            self.budget.give(taken)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.on_reject("too_large")
        error = APIError(413, f"The request body is larger than {self.max_bytes} bytes.", code="body_too_large")
        await JSONResponse(error.body(), 413, headers={"Connection": "close"})(scope, receive, send)

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.on_reject("bodies_in_flight")
        error = APIError(
            429,
            f"The server holds {self.budget.limit} bytes of request bodies already. Retry later.",
            type="rate_limit_error",
            code="bodies_in_flight",
        )
        headers = {"Connection": "close", "Retry-After": str(self.retry_after or 1)}
        await JSONResponse(error.body(), 429, headers=headers)(scope, receive, send)


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing connections that do not send complete headers within `seconds`."""

    class HeaderTimeoutH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:
                self._arm()
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is None and not self.transport.is_closing():
                self._header_timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Idle between requests: uvicorn's keep-alive timeout applies; the deadline restarts with new data.
            self._disarm()

    return HeaderTimeoutH11Protocol
