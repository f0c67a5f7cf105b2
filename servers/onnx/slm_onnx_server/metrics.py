"""Prometheus metrics under vLLM's names and meanings, so dashboards, alerts and autoscalers work unchanged.

Every series carries the `model_name` label (the served model name), as vLLM's do. Bucket bounds are
vLLM's. The mapping, and what is not exported, is in docs/onnx-server.md.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from .engine import Finished

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
               40.0, 80.0)  # fmt: skip
REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                   240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
FINISH_REASONS = ("stop", "length", "abort")
REJECT_REASONS = ("queue_full", "context_length", "unauthorized", "too_large", "timeout", "unsupported",
                  "bodies_in_flight", "schema_limit")  # fmt: skip

disable_created_metrics()  # type: ignore[no-untyped-call]  # vLLM exports no `_created` series either


def token_buckets(context_length: int) -> tuple[float, ...]:
    """1, 2, 5, 10, 20, 50 … up to the context length, as vLLM builds them."""
    out: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > context_length:
                return tuple(out)
            out.append(float(value))
        exponent += 1


class Metrics:
    def __init__(self, model_name: str, context_length: int, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        labels = ["model_name"]
        tokens = token_buckets(context_length)
        self.running = Gauge("vllm:num_requests_running", "Number of requests currently generating.", labels,
                             registry=r).labels(model_name)  # fmt: skip
        self.waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting for a generation slot.",
                             labels, registry=r).labels(model_name)  # fmt: skip
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels,
                                     registry=r).labels(model_name)  # fmt: skip
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.",
                                         labels, registry=r).labels(model_name)  # fmt: skip
        success = Counter("vllm:request_success", "Count of finished requests, by finish reason.",
                          [*labels, "finished_reason"], registry=r)  # fmt: skip
        self.success = {reason: success.labels(model_name, reason) for reason in FINISH_REASONS}
        self.preemptions = Counter("vllm:num_preemptions",
                                   "Cumulative number of preemptions (requests parked to end a batch).",
                                   labels, registry=r).labels(model_name)  # fmt: skip
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                              labels, buckets=TTFT_BUCKETS, registry=r).labels(model_name)  # fmt: skip
        self.itl = Histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                             labels, buckets=ITL_BUCKETS, registry=r).labels(model_name)  # fmt: skip
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                             labels, buckets=REQUEST_BUCKETS, registry=r).labels(model_name)  # fmt: skip
        self.queue_time = Histogram("vllm:request_queue_time_seconds",
                                    "Histogram of time spent waiting for a generation slot.", labels,
                                    buckets=REQUEST_BUCKETS, registry=r).labels(model_name)  # fmt: skip
        self.inference_time = Histogram("vllm:request_inference_time_seconds",
                                        "Histogram of time spent generating (prefill and decode).", labels,
                                        buckets=REQUEST_BUCKETS, registry=r).labels(model_name)  # fmt: skip
        self.prefill_time = Histogram("vllm:request_prefill_time_seconds",
                                      "Histogram of time spent in prefill, up to the first token.", labels,
                                      buckets=REQUEST_BUCKETS, registry=r).labels(model_name)  # fmt: skip
        self.decode_time = Histogram("vllm:request_decode_time_seconds",
                                     "Histogram of time spent in decode, after the first token.", labels,
                                     buckets=REQUEST_BUCKETS, registry=r).labels(model_name)  # fmt: skip
        self.request_prompt_tokens = Histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.",
                                               labels, buckets=tokens, registry=r).labels(model_name)  # fmt: skip
        self.request_generation_tokens = Histogram("vllm:request_generation_tokens",
                                                   "Number of generation tokens processed.", labels,
                                                   buckets=tokens, registry=r).labels(model_name)  # fmt: skip
        self.max_tokens_param = Histogram("vllm:request_params_max_tokens", "The max_tokens request parameter.",
                                          labels, buckets=tokens, registry=r).labels(model_name)  # fmt: skip
        self.batch_size = Gauge("slm_onnx:batch_size",
                                "Requests in the og.Engine batch running now (slots in use until the batch ends).",
                                labels, registry=r).labels(model_name)  # fmt: skip
        self.max_batch_size = Gauge("slm_onnx:max_batch_size", "The og.Engine static batch size configured.",
                                    labels, registry=r).labels(model_name)  # fmt: skip
        self.batches = Counter("slm_onnx:batches", "og.Engine batches run.", labels,
                               registry=r).labels(model_name)  # fmt: skip
        self.engine_rebuilds = Counter("slm_onnx:engine_rebuilds",
                                       "og.Engine instances rebuilt after the engine reported itself unhealthy.",
                                       labels, registry=r).labels(model_name)  # fmt: skip
        self.engine_healthy = Gauge("slm_onnx:engine_healthy",
                                    "1 while og.Engine serves; 0 once it failed beyond its rebuilds (/health is 503).",
                                    labels, registry=r).labels(model_name)  # fmt: skip
        rejected = Counter("slm_onnx:requests_rejected",
                           "Requests refused before generation, by reason.",
                           [*labels, "reason"], registry=r)  # fmt: skip
        self.rejected = {reason: rejected.labels(model_name, reason) for reason in REJECT_REASONS}

    def observe_finished(self, done: Finished, max_tokens: int) -> None:
        """Record a finished (or aborted) generation; called once per request, from any thread."""
        t = done.timings
        self.success[done.finish_reason].inc()
        self.prompt_tokens.inc(done.prompt_tokens)
        self.generation_tokens.inc(done.completion_tokens)
        self.request_prompt_tokens.observe(done.prompt_tokens)
        self.request_generation_tokens.observe(done.completion_tokens)
        self.max_tokens_param.observe(max_tokens)
        self.e2e.observe(t.finished - t.arrival)
        self.queue_time.observe(max(0.0, t.scheduled - t.arrival))
        self.inference_time.observe(t.finished - t.scheduled)
        if t.first_token is not None:
            self.ttft.observe(t.first_token - t.arrival)
            self.prefill_time.observe(t.first_token - t.scheduled)
            self.decode_time.observe(t.finished - t.first_token)
        for gap in t.inter_token:
            self.itl.observe(gap)
