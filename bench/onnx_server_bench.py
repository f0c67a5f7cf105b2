"""The ONNX server against the raw onnxruntime-genai loops, on the same model and prompts, in one run.

    python bench/onnx_server_bench.py [--model DIR] [--max-tokens 64] [--requests 16] [--concurrency 1,4,8]
                                      [--batch-size 8] [--context N] [--baseline-ref HEAD]

For each concurrency c (c closed-loop clients, each sending its next request when the last one ended) and two
arrival patterns, `burst` (all clients start at once) and `staggered` (client i starts i/c of a request's
duration after the first, so requests keep arriving while others run), it reports tokens/s and time to
first token (TTFT p50/p95, ms) of:

- `raw_generator`: one `og.Generator` per request, c threads (the loop a caller would write);
- `raw_engine`: `og.Engine` with the same static batch size as the server, fed by one thread;
- `server_stream` / `server`: `python -m slm_onnx_server` on 127.0.0.1, `/v1/completions` over HTTP with
  keep-alive (TTFT of non-streaming requests is not observable: the whole latency is reported instead);
- `baseline` (with --baseline-ref): the server as committed at that git ref, in its default configuration
  (the reference for "N times the tokens/s at c=4").

Every request is greedy with `ignore_eos`, so it makes exactly --max-tokens tokens everywhere. TTFT is
the time to the first token that decodes to visible text, everywhere: a client sees nothing of a token
that decodes to no text (the synthetic models' first token is one), so that is what a server can send. Prints JSON with
the ratios the issue asks for. Not run in CI. The default model is the committed tiny test model, whose
per-token cost is tiny (so fixed costs weigh more than with a real model); build a bigger one with
servers/onnx/tools/build_tiny_model.py --hidden-size 512 --layers 8 --output DIR.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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

#: One request: (prompt index) → (tokens made, seconds to the first token or None when not observable).
Call = Callable[[int], tuple[int, float | None]]


def load_model(model_dir: Path, batch_size: int, context: int | None) -> tuple[Any, Any, Any, Any]:
    og: Any = importlib.import_module("onnxruntime_genai")
    np: Any = importlib.import_module("numpy")
    config = og.Config(str(model_dir))
    context = context or json.loads((model_dir / "genai_config.json").read_text())["model"]["context_length"]
    config.overlay(json.dumps({"engine": {"static_batching": {"max_batch_size": batch_size}},
                               "search": {"max_length": context}}))  # fmt: skip
    model = og.Model(config)
    return og, np, model, og.Tokenizer(model)


class RawGenerator:
    """One og.Generator per request, with the search options the server uses."""

    def __init__(self, og: Any, np: Any, model: Any, tokenizer: Any) -> None:
        self.og, self.np, self.model, self.tokenizer = og, np, model, tokenizer

    def __call__(self, prompt: str, max_tokens: int) -> tuple[int, float | None]:
        started = time.perf_counter()
        ids = self.tokenizer.encode(prompt)
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(ids) + max_tokens, min_length=len(ids) + max_tokens,
                                  do_sample=False, batch_size=1)  # fmt: skip
        generator = self.og.Generator(self.model, params)
        generator.append_tokens(self.np.asarray(ids, dtype=self.np.int32))
        stream = self.tokenizer.create_stream()
        count, first = 0, None
        while count < max_tokens and not generator.is_done():
            generator.generate_next_token()
            text = stream.decode(generator.get_next_tokens()[0])
            count += 1
            if first is None and text:
                first = time.perf_counter() - started
        return count, first


class RawEngine:
    """og.Engine driven by one thread: requests are begun as they arrive (the engine batches statically)."""

    def __init__(self, og: Any, np: Any, model: Any, tokenizer: Any) -> None:
        self.og, self.np, self.tokenizer = og, np, tokenizer
        self.model = model
        self.inbox: queue.Queue[tuple[list[int], int, dict[str, Any]]] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        og, np = self.og, self.np
        engine = og.Engine(self.model)
        buffer = engine.create_event_buffer(256)
        waiting: dict[int, tuple[Any, dict[str, Any], Any]] = {}
        while True:
            block = not engine.has_pending_requests()
            while True:
                try:
                    ids, max_tokens, slot = self.inbox.get(block=block, timeout=None)
                except queue.Empty:
                    break
                block = False
                request = engine.create_request()
                options = og.TurnOptions(request)
                options.set_max_generated_tokens(max_tokens)
                options.set_min_generated_tokens(max_tokens)
                options.set_do_sample(False)
                request.begin_turn(np.asarray(ids, dtype=np.int32), options)
                waiting[id(request)] = (request, slot, self.tokenizer.create_stream())
            for event in engine.run(buffer):
                request, slot, stream = waiting[id(event.request)]
                if event.flags & og.EngineEventFlags.TOKEN and event.token is not None:
                    text = stream.decode(event.token)
                    slot["count"] += 1
                    if slot["first"] is None and text:
                        slot["first"] = time.perf_counter() - slot["started"]
                if event.flags & og.EngineEventFlags.TURN_FINISHED:
                    del waiting[id(request)]
                    request.close()
                    slot["done"].set()

    def __call__(self, prompt: str, max_tokens: int) -> tuple[int, float | None]:
        slot: dict[str, Any] = {"started": time.perf_counter(), "count": 0, "first": None, "done": threading.Event()}
        self.inbox.put((self.tokenizer.encode(prompt), max_tokens, slot))
        slot["done"].wait()
        return int(slot["count"]), slot["first"]


class Server:
    def __init__(self, model_dir: Path, env: dict[str, str], pythonpath: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("SLM_ONNX_")}
        full |= {"PYTHONPATH": str(pythonpath), "SLM_ONNX_MODEL_PATH": str(model_dir), "SLM_ONNX_HOST": "127.0.0.1",
                 "SLM_ONNX_PORT": str(port), "SLM_ONNX_LOG_LEVEL": "warning", **env}  # fmt: skip
        self.process = subprocess.Popen([sys.executable, "-m", "slm_onnx_server"], env=full)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise SystemExit("the server did not become ready")
        self.client = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))

    def call(self, stream: bool) -> Callable[[str, int], tuple[int, float | None]]:
        def request(prompt: str, max_tokens: int) -> tuple[int, float | None]:
            body = {"prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0,
                    "stream": stream, "stream_options": {"include_usage": True}}  # fmt: skip
            started = time.perf_counter()
            if not stream:
                response = self.client.post(f"{self.base}/v1/completions", json=body, timeout=300)
                response.raise_for_status()
                return int(response.json()["usage"]["completion_tokens"]), None
            first, tokens = None, 0
            with self.client.stream("POST", f"{self.base}/v1/completions", json=body, timeout=300) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    data = json.loads(line[6:])
                    if data.get("usage"):
                        tokens = int(data["usage"]["completion_tokens"])
                    elif first is None and data["choices"] and data["choices"][0]["text"]:
                        first = time.perf_counter() - started
            return tokens, first

        return request

    def stop(self) -> None:
        if hasattr(self, "client"):
            self.client.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(call: Callable[[str, int], tuple[int, float | None]], max_tokens: int, concurrency: int, requests: int,
        stagger: float) -> dict[str, Any]:  # fmt: skip
    """`concurrency` closed-loop clients sharing `requests` requests; client i starts i*stagger/c seconds late."""
    per_client = max(1, requests // concurrency)
    ttfts: list[float] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def client(i: int) -> int:
        time.sleep(i * stagger / concurrency)
        made = 0
        for k in range(per_client):
            started = time.perf_counter()
            tokens, first = call(PROMPTS[(i + k) % len(PROMPTS)], max_tokens)
            with lock:
                latencies.append(time.perf_counter() - started)
                if first is not None:
                    ttfts.append(first)
            made += tokens
        return made

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        tokens = sum(pool.map(client, range(concurrency)))
    wall = time.perf_counter() - started
    out: dict[str, Any] = {"tokens_per_s": round(tokens / wall, 1), "requests": per_client * concurrency}
    if ttfts:
        out |= {"ttft_p50_ms": round(statistics.median(ttfts) * 1000, 2),
                "ttft_p95_ms": round(percentile(ttfts, 0.95) * 1000, 2)}  # fmt: skip
    out |= {"latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
            "latency_p95_ms": round(percentile(latencies, 0.95) * 1000, 2)}  # fmt: skip
    return out


def baseline_tree(ref: str) -> Path:
    """The server package as committed at `ref`, exported into a temporary folder (read-only git)."""
    target = Path(tempfile.mkdtemp(prefix="onnx-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "servers/onnx/slm_onnx_server"],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "servers" / "onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=16, help="requests per measurement (at least 2 per client)")
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--batch-size", type=int, default=8, help="og.Engine batch size (server and raw engine)")
    parser.add_argument("--baseline-ref", default=None, help="also measure the server as committed at this ref")
    parser.add_argument("--context", type=int, default=None,
                        help="served context (KV memory is batch x context): the model's when unset")  # fmt: skip
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    og, np, model, tokenizer = load_model(args.model, args.batch_size, args.context)
    context_env = {"SLM_ONNX_CONTEXT_LENGTH": str(args.context)} if args.context else {}
    contenders: dict[str, Callable[[str, int], tuple[int, float | None]]] = {
        "raw_generator": RawGenerator(og, np, model, tokenizer),
        "raw_engine": RawEngine(og, np, model, tokenizer),
    }
    servers: list[Server] = []
    try:
        server = Server(args.model, {"SLM_ONNX_MAX_BATCH_SIZE": str(args.batch_size), "SLM_ONNX_MAX_QUEUE": "256",
                                     **context_env}, SERVER_DIR)  # fmt: skip
        servers.append(server)
        contenders["server_stream"] = server.call(True)
        contenders["server"] = server.call(False)
        if args.baseline_ref:
            old = Server(args.model, {"SLM_ONNX_MAX_QUEUE": "256", **context_env}, baseline_tree(args.baseline_ref))
            servers.append(old)
            contenders["baseline"] = old.call(False)
        for call in contenders.values():  # warm-up
            for prompt in PROMPTS:
                call(prompt, args.max_tokens)
        single = run(contenders["raw_generator"], args.max_tokens, 1, 4, 0.0)["latency_p50_ms"] / 1000
        results: dict[str, Any] = {}
        for pattern, stagger in (("burst", 0.0), ("staggered", single)):
            for level in levels:
                requests = max(args.requests, 2 * level)
                for name, call in contenders.items():
                    results.setdefault(pattern, {}).setdefault(str(level), {})[name] = run(
                        call, args.max_tokens, level, requests, stagger
                    )
    finally:
        for running in servers:
            running.stop()

    def tps(pattern: str, level: int, name: str) -> float:
        return float(results[pattern][str(level)][name]["tokens_per_s"])

    ratios: dict[str, Any] = {}
    if 4 in levels:
        for pattern in results:
            entry = {
                "server_vs_raw_engine_c4": round(tps(pattern, 4, "server") / tps(pattern, 4, "raw_engine"), 3),
                "server_stream_vs_raw_engine_c4": round(
                    tps(pattern, 4, "server_stream") / tps(pattern, 4, "raw_engine"), 3
                ),
            }
            if "baseline" in contenders:
                entry["server_c4_vs_baseline_c4"] = round(tps(pattern, 4, "server") / tps(pattern, 4, "baseline"), 3)
            ratios[pattern] = entry
    if 1 in levels:
        burst = results["burst"]["1"]
        ratios["ttft_overhead_c1_ms"] = round(
            burst["server_stream"]["ttft_p50_ms"] - burst["raw_engine"]["ttft_p50_ms"], 2
        )
        ratios["ttft_overhead_c1_vs_generator_ms"] = round(
            burst["server_stream"]["ttft_p50_ms"] - burst["raw_generator"]["ttft_p50_ms"], 2
        )
    report = {
        "model": args.model.name,
        "max_tokens": args.max_tokens,
        "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "stagger_seconds": round(single, 4),
        "results": results,
        "ratios": ratios,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
