"""Limits on what a client can make the server hold: body size and read time, and the time to send headers.

- `BodyLimitMiddleware` reads the body of every POST before the route sees it: more than `max_bytes` is a 413
  (at once when Content-Length says so), a body not complete within `timeout` seconds is a 408. The route
  then reads the buffered body; disconnect detection still reaches the real connection.
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


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float, on_reject: Callable[[str], None]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
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
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.on_reject("too_large")
        error = APIError(413, f"The request body is larger than {self.max_bytes} bytes.", code="body_too_large")
        await JSONResponse(error.body(), 413, headers={"Connection": "close"})(scope, receive, send)


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
