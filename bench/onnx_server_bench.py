"""The ONNX server's overhead against the raw onnxruntime-genai loop, on the same model and prompts.

    python bench/onnx_server_bench.py [--model DIR] [--max-tokens 64] [--requests 24] [--concurrency 1,4,16]

Raw: `og.Generator` in this process, the loop a caller would write (append the prompt, generate_next_token,
decode each token with a tokenizer stream). Server: `python -m slm_onnx_server` on 127.0.0.1 (free port),
`/v1/completions` over HTTP with keep-alive, greedy, `ignore_eos` so every request makes exactly --max-tokens
tokens on both sides. At concurrency 1 raw and server requests alternate (side by side, so drift in the
machine hits both); throughput at each concurrency runs that many clients (threads) at once. Prints JSON.
Not run in CI. Needs onnxruntime-genai and httpx; the default model is the committed tiny test model, whose
per-token cost is tiny, so overhead there is an upper bound (build a bigger one with
servers/onnx/tools/build_tiny_model.py --hidden-size 512 --layers 8 --output DIR).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER_DIR = ROOT / "servers" / "onnx"
DEFAULT_MODEL = SERVER_DIR / "tests_model" / "tiny-llama"
PROMPTS = [
    "Tell me a story about a robot who learns to cook.",
    "What is the capital of France?",
    "Small language models run on Kubernetes with ONNX Runtime.",
    "hello world, this is a test of the tokenizer.",
]


class Raw:
    """The plain generation loop, with the same search options the server uses for these requests."""

    def __init__(self, model_dir: Path) -> None:
        self.og: Any = importlib.import_module("onnxruntime_genai")
        self.np: Any = importlib.import_module("numpy")
        self.model = self.og.Model(str(model_dir))
        self.tokenizer = self.og.Tokenizer(self.model)

    def generate(self, prompt: str, max_tokens: int) -> int:
        ids = self.tokenizer.encode(prompt)
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(ids) + max_tokens, min_length=len(ids) + max_tokens,
                                  do_sample=False, batch_size=1)  # fmt: skip
        generator = self.og.Generator(self.model, params)
        generator.append_tokens(self.np.asarray(ids, dtype=self.np.int32))
        stream = self.tokenizer.create_stream()
        text = []
        count = 0
        while count < max_tokens and not generator.is_done():
            generator.generate_next_token()
            token = generator.get_next_tokens()[0]
            text.append(stream.decode(token))
            count += 1
        return count


class Server:
    def __init__(self, model_dir: Path, concurrency: int) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PYTHONPATH": str(SERVER_DIR),
            "SLM_ONNX_MODEL_PATH": str(model_dir),
            "SLM_ONNX_HOST": "127.0.0.1",
            "SLM_ONNX_PORT": str(port),
            "SLM_ONNX_MAX_CONCURRENCY": str(concurrency),
            "SLM_ONNX_MAX_QUEUE": "64",
            "SLM_ONNX_LOG_LEVEL": "warning",
        }
        self.process = subprocess.Popen([sys.executable, "-m", "slm_onnx_server"], env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit("the server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def server_request(client: httpx.Client, base: str, prompt: str, max_tokens: int, stream: bool) -> int:
    body = {"prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0, "stream": stream}
    if not stream:
        response = client.post(f"{base}/v1/completions", json=body, timeout=120)
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"])
    chunks = 0
    with client.stream("POST", f"{base}/v1/completions", json=body, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunks += 1
    return max_tokens if chunks else 0


def timed(call: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = call()
    return time.perf_counter() - started, tokens


def throughput(worker: Callable[[int], int], requests: int, concurrency: int) -> dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        tokens = sum(pool.map(worker, range(requests)))
    wall = time.perf_counter() - started
    return {"requests_per_s": round(requests / wall, 2), "tokens_per_s": round(tokens / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=24, help="requests per measurement")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--server-concurrency", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    raw = Raw(args.model)
    server = Server(args.model, args.server_concurrency)
    client = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    try:
        for prompt in PROMPTS:  # warm-up, both sides
            raw.generate(prompt, args.max_tokens)
            server_request(client, server.base, prompt, args.max_tokens, False)
        samples: dict[str, list[float]] = {"raw": [], "server": [], "server_stream": []}
        for i in range(args.requests):
            prompt = PROMPTS[i % len(PROMPTS)]
            calls: dict[str, Callable[[], int]] = {
                "raw": partial(raw.generate, prompt, args.max_tokens),
                "server": partial(server_request, client, server.base, prompt, args.max_tokens, False),
                "server_stream": partial(server_request, client, server.base, prompt, args.max_tokens, True),
            }
            for name, call in calls.items():
                samples[name].append(timed(call)[0])
        median = {k: statistics.median(v) for k, v in samples.items()}
        overhead = {
            "raw_median_ms": round(median["raw"] * 1000, 2),
            "server_median_ms": round(median["server"] * 1000, 2),
            "server_stream_median_ms": round(median["server_stream"] * 1000, 2),
            "overhead_pct": round(100 * (median["server"] / median["raw"] - 1), 1),
            "overhead_stream_pct": round(100 * (median["server_stream"] / median["raw"] - 1), 1),
            "overhead_per_token_ms": round((median["server"] - median["raw"]) * 1000 / args.max_tokens, 3),
        }
        levels_out: dict[str, Any] = {}
        for level in levels:
            requests = max(args.requests, 2 * level)

            def raw_worker(i: int) -> int:
                return raw.generate(PROMPTS[i % len(PROMPTS)], args.max_tokens)

            def server_worker(i: int) -> int:
                return server_request(client, server.base, PROMPTS[i % len(PROMPTS)], args.max_tokens, False)

            levels_out[str(level)] = {
                "raw": throughput(raw_worker, requests, level),
                "server": throughput(server_worker, requests, level),
            }
    finally:
        client.close()
        server.stop()
    report = {
        "model": args.model.name,
        "max_tokens": args.max_tokens,
        "requests": args.requests,
        "server_concurrency": args.server_concurrency,
        "cpus": os.cpu_count(),
        "concurrency_1_latency": overhead,
        "throughput": levels_out,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
