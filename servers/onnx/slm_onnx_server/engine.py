"""The generation loop on onnxruntime-genai: one og.Generator per request, run in a worker thread.

Everything here is synchronous and CPU-bound; the HTTP layer calls `Engine.generate` from a thread pool.
Stop strings are matched here, on the decoded text, because onnxruntime-genai has no stop strings.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime_genai as og

from .config import Settings, model_context_length
from .stops import StopMatcher


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    min_tokens: int = 0


@dataclass
class Timings:
    """Monotonic clock readings of one request, for the vLLM-compatible histograms."""

    arrival: float
    scheduled: float = 0.0
    first_token: float | None = None
    last_token: float | None = None
    finished: float = 0.0
    inter_token: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    finish_reason: str  # stop | length | abort
    prompt_tokens: int
    completion_tokens: int
    timings: Timings


Event = Delta | Finished


class Engine:
    """A loaded model and its tokenizer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        path = settings.model_path
        model_context = model_context_length(path)
        self.context_length = min(settings.context_length or model_context, model_context)
        config = og.Config(str(path))
        if settings.execution_provider is not None:
            config.clear_providers()
            if settings.execution_provider != "cpu":
                config.append_provider(settings.execution_provider)
        self.model = og.Model(config)
        self.tokenizer = og.Tokenizer(self.model)
        self.eos_token_ids = frozenset(int(t) for t in self.tokenizer.eos_token_ids)
        self.bos_token_id = int(self.tokenizer.bos_token_id)
        self.chat_template: str | None = None
        if settings.chat_template_file is not None:
            self.chat_template = settings.chat_template_file.read_text(encoding="utf-8")
        self.add_bos_to_completions = _tokenizer_adds_bos(path)
        genai_config = json.loads((path / "genai_config.json").read_text(encoding="utf-8"))
        self.vocab_size = int(genai_config["model"]["vocab_size"])

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer.encode(text)]

    def completion_prompt(self, text: str) -> list[int]:
        ids = self.encode(text)
        if self.add_bos_to_completions and (not ids or ids[0] != self.bos_token_id):
            ids.insert(0, self.bos_token_id)
        return ids

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """Apply the model's chat template (or the configured one) to text messages."""
        payload = json.dumps(messages, ensure_ascii=False)
        if self.chat_template is not None:
            return str(self.tokenizer.apply_chat_template(payload, template_str=self.chat_template))
        return str(self.tokenizer.apply_chat_template(payload, add_generation_prompt=True))

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        timings: Timings,
        cancelled: threading.Event,
        emit: Callable[[Event], None],
        on_first_token: Callable[[], None] | None = None,
    ) -> Finished:
        """Generate until EOS, a stop string, max_tokens or cancellation; emit text deltas, then Finished."""
        timings.scheduled = time.monotonic()
        prompt_len = len(prompt_ids)
        options: dict[str, Any] = {"max_length": prompt_len + params.max_tokens, "batch_size": 1}
        if params.temperature <= 0.0:
            options.update(do_sample=False)
        else:
            options.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            if params.top_k is not None:
                options["top_k"] = params.top_k
        if params.seed is not None:
            options["random_seed"] = params.seed
        if params.min_tokens:
            options["min_length"] = prompt_len + params.min_tokens
        gen_params = og.GeneratorParams(self.model)
        gen_params.set_search_options(**options)
        generator = og.Generator(self.model, gen_params)
        stream = self.tokenizer.create_stream()
        matcher = StopMatcher(params.stop)
        delay = self.settings.test_token_delay_seconds
        count = 0
        finish = "length"
        try:
            generator.append_tokens(np.asarray(prompt_ids, dtype=np.int32))
            while True:
                if cancelled.is_set():
                    finish = "abort"
                    break
                generator.generate_next_token()
                token = int(generator.get_next_tokens()[0])
                count += 1
                now = time.monotonic()
                if timings.first_token is None:
                    timings.first_token = now
                    if on_first_token is not None:
                        on_first_token()
                elif timings.last_token is not None:
                    timings.inter_token.append(now - timings.last_token)
                timings.last_token = now
                if token in self.eos_token_ids:
                    finish = "stop"
                    break
                text, hit = matcher.feed(stream.decode(token))
                if text:
                    emit(Delta(text))
                if hit:
                    finish = "stop"
                    break
                if count >= params.max_tokens or generator.is_done():
                    finish = "length"
                    break
                if delay:
                    time.sleep(delay)
        finally:
            del generator
        rest = matcher.flush()
        if rest:
            emit(Delta(rest))
        timings.finished = time.monotonic()
        done = Finished(finish, prompt_len, count, timings)
        emit(done)
        return done


def _tokenizer_adds_bos(model_path: Path) -> bool:
    """Whether completions get a BOS token: tokenizer_config.json's add_bos_token (default false).

    onnxruntime-genai's encode() never adds one; chat templates write it themselves when the model wants it.
    """
    try:
        config = json.loads((model_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(config.get("add_bos_token", False))
