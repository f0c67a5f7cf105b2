"""A stand-in OpenAI-compatible model server for tests: standard library only, loopback only.

    python slm_standin_server.py --port N --model NAME --model-dir DIR [--token-delay S] [--fail-every K]

Serves ``GET /health``, ``GET /v1/models`` and ``POST /v1/chat/completions`` (plain and streamed as
server-sent events in OpenAI's chunk format, with a usage chunk when ``stream_options.include_usage``).
It reads ``DIR/model.bin`` at start-up, as a real server loads its weights. Any Python 3.11+ runs it,
so a test started as root can run it as an unprivileged user with a system interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

WORDS = ["OK", ",", " the", " stand", "-in", " answers", " you", "."]


class Handler(BaseHTTPRequestHandler):
    server_version = "standin"
    protocol_version = "HTTP/1.1"
    model = "standin"
    token_delay = 0.0
    fail_every = 0
    requests = 0

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200, {"status": "ok"})
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})
            return
        if request.get("model") != self.model:
            self._json(404, {"error": {"message": "model not found", "type": "model_not_found"}})
            return
        Handler.requests += 1
        if self.fail_every and Handler.requests % self.fail_every == 0:
            self._json(500, {"error": {"message": "injected failure", "type": "server_error"}})
            return
        count = max(1, min(int(request.get("max_tokens") or len(WORDS)), 256))
        tokens = [WORDS[i % len(WORDS)] for i in range(count)]
        created = int(time.time())
        if not request.get("stream"):
            time.sleep(self.token_delay * count)
            self._json(
                200,
                {
                    "id": "chatcmpl-standin",
                    "object": "chat.completion",
                    "created": created,
                    "model": self.model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "".join(tokens)},
                         "finish_reason": "length"}
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": count, "total_tokens": 5 + count},
                },
            )  # fmt: skip
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

        def send(data: Any) -> None:
            self.wfile.write(b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n\n")
            self.wfile.flush()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-standin",
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        send(chunk({"role": "assistant", "content": ""}))
        for token in tokens:
            time.sleep(self.token_delay)
            send(chunk({"content": token}))
        send(chunk({}, "length"))
        if (request.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 5, "completion_tokens": count, "total_tokens": 5 + count}
            send({"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": created,
                  "model": self.model, "choices": [], "usage": usage})  # fmt: skip
        send(b"[DONE]")
        self.close_connection = True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="standin")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()
    weights = args.model_dir / "model.bin"
    if not weights.is_file():
        print(f"error: {weights} not found", file=sys.stderr)
        return 2
    weights.read_bytes()
    Handler.model = args.model
    Handler.token_delay = args.token_delay
    Handler.fail_every = args.fail_every
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
