"""``slm-deploy bench``: serving performance of an OpenAI-compatible endpoint, per concurrency level.

Each request is a streamed chat completion (``stream: true``, ``stream_options.include_usage``):
time to first token (TTFT) is measured from sending the request to the first content delta;
inter-token latency (ITL) is the gap between successive content deltas; output tokens come from the
final usage chunk (or the number of content deltas when the server sends none). Per level: TTFT and
ITL p50/p95, output tokens/s and requests/s over the level's wall time, and errors.

Bounded: at most :data:`MAX_REQUESTS` requests per level, :data:`MAX_CONCURRENCY` at once, each level
stops issuing requests after ``time_budget_s``; each request has a timeout. Requests go to the given
URL only (no redirects are followed). Exit status of :func:`bench_command`: ``0`` measured without
errors, ``1`` some requests failed, ``2`` bad input, or an endpoint that cannot be reached (refused, no
answer, TLS verification failed: said as such, before anything is timed).

TLS: the server's certificate is checked against ``--ca-cert`` when given, else the file named by
``SSL_CERT_FILE`` or ``REQUESTS_CA_BUNDLE``, else the system's trust store; ``--insecure`` checks nothing (said
on stderr). Proxies from the environment are not used: the measured path is the direct one.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MAX_REQUESTS = 10_000
MAX_CONCURRENCY = 512
MAX_TOKENS_LIMIT = 8192
DEFAULT_TIME_BUDGET_S = 300.0
REQUEST_TIMEOUT_S = 120.0
PROMPT = "Write one short paragraph about the sea."


class BenchError(Exception):
    """Bad input, or an endpoint that cannot be reached. ``str()`` is one line."""


#: The environment variables naming a CA bundle, in the order they are read (Python's ssl, then requests').
CA_BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


@dataclass(frozen=True)
class Trust:
    """How the server's certificate is checked: ``verify`` for httpx, ``source`` for messages."""

    verify: ssl.SSLContext | bool
    source: str


def tls_trust(ca_cert: Path | None = None, insecure: bool = False, environ: dict[str, str] | None = None) -> Trust:
    """``--insecure``, else ``--ca-cert``, else ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``, else the system store."""
    environ = dict(os.environ) if environ is None else environ
    if insecure and ca_cert is not None:
        raise BenchError("--insecure checks no certificate: give it or --ca-cert, not both")
    if insecure:
        return Trust(False, "nothing (--insecure)")
    named = [(f"--ca-cert {ca_cert}", ca_cert)] if ca_cert is not None else []
    named += [(f"{name}={environ[name]}", Path(environ[name])) for name in CA_BUNDLE_VARIABLES if environ.get(name)]
    if not named:
        return Trust(ssl.create_default_context(), "the system's trust store")
    source, path = named[0]
    try:
        return Trust(ssl.create_default_context(cafile=str(path)), source)
    except FileNotFoundError:
        raise BenchError(f"{source}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as error:
        raise BenchError(f"{source}: not a PEM file of CA certificates ({' '.join(str(error).split())})") from None


def _unreachable(base: str, error: BaseException, trust: Trust) -> str:
    """One line saying why nothing could be asked of ``base``: refused, no answer, or TLS."""
    parts = urlsplit(base)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "certificate rejected"
            return (
                f"TLS verification of {where} failed ({reason}), trusting {trust.source}: give --ca-cert FILE "
                "with the CA that signed the server's certificate, or --insecure"
            )
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {where} failed ({cause.reason or cause}): is it an HTTPS server?"
        if isinstance(cause, ConnectionRefusedError):
            return f"cannot reach {where}: connection refused (is the server running, and is the port right?)"
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return f"cannot reach {where}: no answer within {PROBE_TIMEOUT_S:g} s"
    return f"cannot reach {where}: {' '.join(str(error).split()) or type(error).__name__}"


#: Seconds the first request (``GET /models``) may take: it only proves the endpoint answers.
PROBE_TIMEOUT_S = 30.0


@dataclass
class RequestResult:
    ok: bool
    latency_s: float
    ttft_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    error: str | None = None


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    completed: int
    errors: int
    duration_s: float
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    itl_p50_ms: float | None
    itl_p95_ms: float | None
    output_tokens: int
    output_tokens_per_s: float
    requests_per_s: float
    error_samples: list[str] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 to 100), linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def summarize(concurrency: int, results: list[RequestResult], duration_s: float) -> LevelResult:
    good = [r for r in results if r.ok]
    ttfts = [r.ttft_s for r in good if r.ttft_s is not None]
    itls = [gap for r in good for gap in r.itl_s]
    tokens = sum(r.output_tokens for r in good)
    samples: list[str] = []
    for r in results:
        if r.error and r.error not in samples and len(samples) < 5:
            samples.append(r.error)
    wall = max(duration_s, 1e-9)
    return LevelResult(
        concurrency=concurrency,
        requests=len(results),
        completed=len(good),
        errors=len(results) - len(good),
        duration_s=round(duration_s, 3),
        ttft_p50_ms=_ms(percentile(ttfts, 50)),
        ttft_p95_ms=_ms(percentile(ttfts, 95)),
        itl_p50_ms=_ms(percentile(itls, 50)),
        itl_p95_ms=_ms(percentile(itls, 95)),
        output_tokens=tokens,
        output_tokens_per_s=round(tokens / wall, 3),
        requests_per_s=round(len(good) / wall, 3),
        error_samples=samples,
    )


async def stream_request(client: Any, url: str, body: dict[str, Any], timeout: float) -> RequestResult:
    """One streamed chat completion: its TTFT, inter-token gaps and output tokens (never raises on HTTP errors)."""
    import httpx

    start = time.perf_counter()
    first: float | None = None
    last = start
    gaps: list[float] = []
    deltas = 0
    usage_tokens = 0
    try:
        async with client.stream("POST", url, json=body, timeout=timeout) as response:
            if response.status_code != 200:
                await response.aread()
                return RequestResult(False, time.perf_counter() - start, error=f"HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                chunk = json.loads(payload)
                usage = chunk.get("usage") or {}
                if usage.get("completion_tokens"):
                    usage_tokens = int(usage["completion_tokens"])
                for choice in chunk.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        now = time.perf_counter()
                        if first is None:
                            first = now
                        else:
                            gaps.append(now - last)
                        last = now
                        deltas += 1
    except httpx.HTTPError as error:
        return RequestResult(False, time.perf_counter() - start, error=type(error).__name__)
    except (ValueError, KeyError, TypeError):
        return RequestResult(False, time.perf_counter() - start, error="malformed stream")
    if first is None:
        return RequestResult(False, time.perf_counter() - start, error="no tokens")
    return RequestResult(
        True,
        time.perf_counter() - start,
        ttft_s=first - start,
        itl_s=gaps,
        output_tokens=usage_tokens or deltas,
    )


async def run_level(
    base_url: str,
    model: str,
    concurrency: int,
    requests: int,
    max_tokens: int,
    headers: dict[str, str] | None = None,
    time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    on_done: Callable[[RequestResult], None] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> LevelResult:
    """``requests`` streamed chat completions, ``concurrency`` at a time (fewer if the budget runs out)."""
    import httpx

    url = f"{base_url.rstrip('/')}/chat/completions"
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    results: list[RequestResult] = []
    issued = 0
    deadline = time.monotonic() + time_budget_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(
        headers=headers, limits=limits, follow_redirects=False, trust_env=False, verify=verify
    ) as client:

        async def worker() -> None:
            nonlocal issued
            while issued < requests and time.monotonic() < deadline:
                issued += 1
                result = await stream_request(client, url, body, request_timeout_s)
                results.append(result)
                if on_done is not None:
                    on_done(result)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        duration = time.perf_counter() - start
    return summarize(concurrency, results, duration)


def parse_levels(levels: str | Sequence[int]) -> list[int]:
    """``"1,4,16"`` or ``[1, 4, 16]`` → ``[1, 4, 16]``, each between 1 and :data:`MAX_CONCURRENCY`."""
    try:
        values = (
            [int(v) for v in levels.split(",") if v.strip()] if isinstance(levels, str) else [int(v) for v in levels]
        )
    except ValueError:
        raise BenchError(f"concurrency levels must be integers, e.g. 1,4,16 (got {levels!r})") from None
    if not values or any(v < 1 or v > MAX_CONCURRENCY for v in values):
        raise BenchError(f"concurrency levels must be between 1 and {MAX_CONCURRENCY} (got {levels!r})")
    return values


def api_base(base_url: str) -> str:
    """The OpenAI API base: ``http://host:8000`` and ``http://host:8000/v1`` both give ``…/v1``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BenchError(f"--url must be an http(s) URL with a host (got {base_url!r})")
    if parts.query or parts.fragment:
        raise BenchError("--url takes no query or fragment")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path if path.endswith('/v1') else path + '/v1'}"


def _read_key(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise BenchError(f"{path}: {error.strerror}") from None
    if not key:
        raise BenchError(f"{path} is empty")
    return {"Authorization": f"Bearer {key}"}


def render_table(levels: list[LevelResult], base: str, model: str, width: int = 140) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model} at {base}")
    columns = ("Concurrency", "Requests", "Errors", "TTFT p50 ms", "TTFT p95 ms", "ITL p50 ms", "ITL p95 ms",
               "Output tok/s", "Req/s")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for level in levels:
        cells = (level.ttft_p50_ms, level.ttft_p95_ms, level.itl_p50_ms, level.itl_p95_ms)
        table.add_row(
            str(level.concurrency),
            str(level.requests),
            str(level.errors),
            *("—" if v is None else f"{v:.1f}" for v in cells),
            f"{level.output_tokens_per_s:.1f}",
            f"{level.requests_per_s:.2f}",
        )
    buffer = StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    console.print(table)
    for level in levels:
        for sample in level.error_samples:
            console.print(f"concurrency {level.concurrency}: error {sample}")
    return buffer.getvalue()


def render_json(levels: list[LevelResult], base: str, model: str, max_tokens: int) -> str:
    from infra.json_keys import camel_keys

    data = {"url": base, "model": model, "maxTokens": max_tokens, "levels": [asdict(level) for level in levels]}
    return json.dumps(camel_keys(data), indent=2) + "\n"


async def probe(base: str, headers: dict[str, str], trust: Trust) -> list[str]:
    """``GET /models`` once, before anything is timed: the served model ids, or :class:`BenchError` saying why the
    endpoint cannot be reached (refused, no answer, TLS). An HTTP error status is an answer: no ids."""
    import httpx

    async with httpx.AsyncClient(headers=headers, follow_redirects=False, trust_env=False, verify=trust.verify) as c:
        try:
            response = await c.get(f"{base}/models", timeout=PROBE_TIMEOUT_S)
        except httpx.TransportError as error:
            raise BenchError(_unreachable(base, error, trust)) from None
    try:
        return [str(entry["id"]) for entry in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return []


def run_bench(
    base_url: str,
    model: str | None,
    concurrency_levels: str | Sequence[int],
    requests: int,
    api_key_file: Path | None,
    max_tokens: int,
    time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    progress: bool = True,
    trust: Trust | None = None,
) -> tuple[str, str, list[LevelResult]]:
    """Measure every level in order; returns (API base, model, results). Raises :class:`BenchError`."""
    levels = parse_levels(concurrency_levels)
    if not 1 <= requests <= MAX_REQUESTS:
        raise BenchError(f"--requests must be between 1 and {MAX_REQUESTS} (got {requests})")
    if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise BenchError(f"--max-tokens must be between 1 and {MAX_TOKENS_LIMIT} (got {max_tokens})")
    base = api_base(base_url)
    headers = _read_key(api_key_file)
    trust = trust or tls_trust()
    served = asyncio.run(probe(base, headers, trust))
    if model is None and not served:
        raise BenchError(f"no --model given and {base}/models names none: give --model")
    chosen = model or served[0]
    verify = trust.verify
    results: list[LevelResult] = []
    if progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            for concurrency in levels:
                task = bar.add_task(f"concurrency {concurrency}", total=requests)
                results.append(
                    asyncio.run(
                        run_level(base, chosen, concurrency, requests, max_tokens, headers, time_budget_s,
                                  on_done=lambda _r, t=task: bar.advance(t), verify=verify)  # type: ignore[misc]
                    )
                )  # fmt: skip
    else:
        for concurrency in levels:
            results.append(
                asyncio.run(
                    run_level(base, chosen, concurrency, requests, max_tokens, headers, time_budget_s, verify=verify)
                )
            )
    return base, chosen, results


def bench_command(
    base_url: str,
    model: str | None,
    concurrency_levels: str | Sequence[int],
    requests: int,
    api_key_file: Path | None,
    output_format: str,
    max_tokens: int,
    ca_cert: Path | None = None,
    insecure: bool = False,
) -> int:
    """The ``slm-deploy bench`` command: 0 measured without errors, 1 some requests failed, 2 bad input or an
    endpoint that cannot be reached."""
    if output_format not in ("text", "json"):
        print(f"error: unknown format {output_format!r} (expected text or json)", file=sys.stderr)
        return 2
    try:
        trust = tls_trust(ca_cert, insecure)
        if insecure:
            print("warning: --insecure: the server's certificate is not checked", file=sys.stderr)
        base, chosen, levels = run_bench(
            base_url,
            model,
            concurrency_levels,
            requests,
            api_key_file,
            max_tokens,
            progress=sys.stderr.isatty(),
            trust=trust,
        )
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if output_format == "json":
        sys.stdout.write(render_json(levels, base, chosen, max_tokens))
    else:
        sys.stdout.write(render_table(levels, base, chosen))
    return 1 if any(level.errors for level in levels) else 0
