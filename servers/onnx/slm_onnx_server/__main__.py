"""`python -m slm_onnx_server`: serve the model named by SLM_ONNX_MODEL_PATH with uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn

from .api import create_app
from .config import ConfigError, Settings
from .limits import header_timeout_protocol


def main() -> int:
    try:
        settings = Settings.from_env()
        settings.read_api_keys()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    failures: list[str] = []
    server: uvicorn.Server | None = None

    def stop(reason: str) -> None:
        failures.append(reason)
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_load_failure=stop)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=20,
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]  # uvicorn accepts a float
        http=header_timeout_protocol(settings.header_timeout_seconds),
        h11_max_incomplete_event_size=16 * 1024,  # request line and headers
        # Connections (and requests in progress) beyond this get uvicorn's 503 at once; with the body budget
        # (limits.py) it bounds what clients can make the server buffer.
        limit_concurrency=settings.max_connections,
        server_header=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    server.run()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
