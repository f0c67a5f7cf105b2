"""API keys: `Authorization: Bearer <key>` on every /v1 route when keys are configured.

Keys come from files only (mounted Secrets): `SLM_ONNX_API_KEY_FILE` (one key) and `SLM_ONNX_API_KEYS_FILE`
(a JSON object of client name to key, the format of the entry point's secret). Every configured key is
compared in constant time, so the time taken does not depend on which key, or how much of one, matched.
`/health` and `/metrics` stay open for probes and Prometheus.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .protocol import APIError


class KeyChecker:
    def __init__(self, keys: Iterable[str]) -> None:
        self.expected = [f"Bearer {key}".encode() for key in keys]

    def allows(self, header: bytes) -> bool:
        ok = False
        for expected in self.expected:
            ok |= hmac.compare_digest(header, expected)
        return ok


class ApiKeyMiddleware:
    """401 on /v1 routes without a configured key."""

    def __init__(self, app: ASGIApp, keys: Iterable[str], on_reject: Callable[[], None]) -> None:
        self.app = app
        self.checker = KeyChecker(keys)
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1"):
            given = b""
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    given = value
                    break
            if not self.checker.allows(given):
                self.on_reject()
                error = APIError(
                    401, "Invalid or missing API key.", type="authentication_error", code="invalid_api_key"
                )
                response = JSONResponse(error.body(), status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
