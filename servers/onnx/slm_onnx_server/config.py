"""Server settings, read from environment variables only (one place, validated at start-up)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "SLM_ONNX_"


class ConfigError(ValueError):
    """An environment variable is missing or has a bad value."""


@dataclass(frozen=True)
class Settings:
    model_path: Path
    served_model_name: str
    context_length: int | None  # None: the model's own (genai_config.json)
    max_batch_size: int  # og.Engine's static batch: generations at once (SLM_ONNX_MAX_CONCURRENCY is an alias)
    max_queue: int
    host: str
    port: int
    api_key_file: Path | None
    api_keys_file: Path | None  # JSON object of client name to key (the entry point's format)
    execution_provider: str | None  # None: as genai_config.json says
    chat_template_file: Path | None
    retry_after_seconds: int
    default_max_tokens: int | None
    log_level: str
    generator_workers: int  # threads of the og.Generator path (requests the engine cannot serve: seeded sampling)
    preprocess_workers: int  # threads that parse bodies, apply chat templates and tokenise (off the event loop)
    batch_gather_seconds: float  # how long a batch start waits for requests still being tokenised
    preempt_after_steps: int  # a batch this old is ended early for waiting requests (0: never; scheduler.py)
    max_body_bytes: int
    max_buffered_bytes: int  # request bodies being read or held, all connections together (limits.py)
    max_connections: int  # uvicorn's limit_concurrency: connections or requests in progress beyond it get 503
    max_schema_bytes: int  # guidance.py: limits on a response_format schema, checked before any engine sees it
    max_schema_properties: int
    max_schema_depth: int
    guided_batching: bool  # guided requests in og.Engine batches (not parked) instead of on og.Generator
    engine_max_rebuilds: int  # og.Engine failures the server recovers from by rebuilding it; then /health is 503
    header_timeout_seconds: float
    body_timeout_seconds: float
    keep_alive_seconds: float
    # Test-only knobs (documented as such): slow the load and every generated token down.
    test_load_delay_seconds: float
    test_token_delay_seconds: float

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(PREFIX + name, "").strip()
            return value if value else default

        def integer(name: str, default: int | None, minimum: int) -> int | None:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{PREFIX}{name}: expected an integer, got {raw!r}") from None
            if value < minimum:
                raise ConfigError(f"{PREFIX}{name}: must be at least {minimum}, got {value}")
            return value

        def number(name: str, default: float, positive: bool = False) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{PREFIX}{name}: expected a number, got {raw!r}") from None
            if value < 0 or value != value or value == float("inf"):
                raise ConfigError(f"{PREFIX}{name}: must be a finite number, not negative, got {raw}")
            if positive and value == 0:
                raise ConfigError(f"{PREFIX}{name}: must be more than 0, got {raw}")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = get(name)
            if raw is None:
                return default
            if raw.lower() in ("1", "true", "yes"):
                return True
            if raw.lower() in ("0", "false", "no"):
                return False
            raise ConfigError(f"{PREFIX}{name}: expected true or false, got {raw!r}")

        model = get("MODEL_PATH")
        if model is None:
            raise ConfigError(f"{PREFIX}MODEL_PATH is required: the folder with genai_config.json")
        model_path = Path(model)
        provider = get("EXECUTION_PROVIDER")
        if provider is not None and provider not in ("cpu", "cuda"):
            raise ConfigError(f"{PREFIX}EXECUTION_PROVIDER: expected cpu or cuda, got {provider!r}")
        api_key_file = get("API_KEY_FILE")
        api_keys_file = get("API_KEYS_FILE")
        batch = integer("MAX_BATCH_SIZE", None, 1) or integer("MAX_CONCURRENCY", None, 1) or 4
        template = get("CHAT_TEMPLATE_FILE")
        log_level = (get("LOG_LEVEL", "info") or "info").lower()
        if log_level not in ("critical", "error", "warning", "info", "debug"):
            raise ConfigError(f"{PREFIX}LOG_LEVEL: expected critical|error|warning|info|debug, got {log_level!r}")
        max_body = integer("MAX_BODY_BYTES", 4 * 1024 * 1024, 1024) or 4 * 1024 * 1024
        buffered = integer("MAX_BUFFERED_BYTES", max(16 * 1024 * 1024, max_body), 1024) or 0
        if buffered < max_body:
            raise ConfigError(
                f"{PREFIX}MAX_BUFFERED_BYTES ({buffered}) must be at least {PREFIX}MAX_BODY_BYTES ({max_body})"
            )
        return Settings(
            model_path=model_path,
            served_model_name=get("SERVED_MODEL_NAME") or model_path.name,
            context_length=integer("CONTEXT_LENGTH", None, 1),
            max_batch_size=batch,
            max_queue=integer("MAX_QUEUE", 16, 0) or 0,
            host=get("HOST", "0.0.0.0") or "0.0.0.0",
            port=integer("PORT", 8000, 1) or 8000,
            api_key_file=Path(api_key_file) if api_key_file else None,
            api_keys_file=Path(api_keys_file) if api_keys_file else None,
            execution_provider=provider,
            chat_template_file=Path(template) if template else None,
            retry_after_seconds=integer("RETRY_AFTER_SECONDS", 1, 0) or 0,
            default_max_tokens=integer("DEFAULT_MAX_TOKENS", None, 1),
            log_level=log_level,
            generator_workers=integer("GENERATOR_WORKERS", 1, 1) or 1,
            preprocess_workers=integer("PREPROCESS_WORKERS", 2, 1) or 2,
            batch_gather_seconds=number("BATCH_GATHER_MS", 5.0) / 1000.0,
            preempt_after_steps=integer("PREEMPT_AFTER_STEPS", 16, 0) or 0,
            max_body_bytes=max_body,
            max_buffered_bytes=buffered,
            max_connections=integer("MAX_CONNECTIONS", 256, 1) or 256,
            max_schema_bytes=integer("MAX_SCHEMA_BYTES", 32 * 1024, 2) or 0,
            max_schema_properties=integer("MAX_SCHEMA_PROPERTIES", 256, 0) or 0,
            max_schema_depth=integer("MAX_SCHEMA_DEPTH", 32, 1) or 0,
            guided_batching=flag("GUIDED_BATCHING", False),
            engine_max_rebuilds=integer("ENGINE_MAX_REBUILDS", 3, 0) or 0,
            header_timeout_seconds=number("HEADER_TIMEOUT_SECONDS", 10.0, positive=True),
            body_timeout_seconds=number("BODY_TIMEOUT_SECONDS", 30.0, positive=True),
            keep_alive_seconds=number("KEEP_ALIVE_SECONDS", 5.0, positive=True),
            test_load_delay_seconds=number("TEST_LOAD_DELAY_SECONDS", 0.0),
            test_token_delay_seconds=number("TEST_TOKEN_DELAY_SECONDS", 0.0),
        )

    @property
    def max_concurrency(self) -> int:
        """Generations at once: the engine's batch (the old name of the setting)."""
        return self.max_batch_size

    def read_api_keys(self) -> dict[str, str]:
        """Every accepted key by client name: the single key file (client `default`) and the JSON keys file."""
        keys: dict[str, str] = {}
        single = self.read_api_key()
        if single is not None:
            keys["default"] = single
        if self.api_keys_file is None:
            return keys
        try:
            text = self.api_keys_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8"
            raise ConfigError(f"{PREFIX}API_KEYS_FILE: cannot read {self.api_keys_file}: {reason}") from None
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        # Never quote the value: it is secret.
        if not isinstance(value, dict) or not value:
            raise ConfigError(f"{PREFIX}API_KEYS_FILE: expected a non-empty JSON object of client name to key")
        for position, (client, key) in enumerate(value.items(), start=1):
            if not isinstance(key, str) or not key.strip():
                raise ConfigError(
                    f"{PREFIX}API_KEYS_FILE: the key of client number {position} must be a non-empty string"
                )
            keys[str(client)] = key.strip()
        return keys

    def read_api_key(self) -> str | None:
        """The API key from its file (a mounted Secret), or None when no key is configured."""
        if self.api_key_file is None:
            return None
        try:
            key = self.api_key_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{PREFIX}API_KEY_FILE: cannot read {self.api_key_file}: {error.strerror}") from None
        if not key:
            raise ConfigError(f"{PREFIX}API_KEY_FILE: {self.api_key_file} is empty")
        return key


def model_context_length(model_path: Path) -> int:
    """The context length recorded in the model's genai_config.json."""
    config = json.loads((model_path / "genai_config.json").read_text(encoding="utf-8"))
    model = config.get("model", {})
    value = model.get("context_length") or config.get("search", {}).get("max_length")
    if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{model_path / 'genai_config.json'}: no model.context_length")
    return value
