"""Per-client token budgets and model allow-lists at the entry point (``slm-deploy:entryPoint.quotas``).

Each API-key client (a name in the entry point's key Secret) gets the models it may call and token budgets per
minute, day and month. Enforced at the gateway by Envoy AI Gateway (token counts from each response's ``usage``)
and Envoy Gateway's global rate limit (counters in a Redis deployed by slm-deploy). See ``docs/quotas.md``.
Cross-field checks that need the rest of the stack live in :func:`check_quotas`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Literal, Protocol

from pydantic import Field, field_validator, model_validator

from infra.config.base import ConfigModel, KeyPathError
from infra.config.images import ImageRef
from infra.config.names import DnsLabel
from infra.config.resources import ResourceList, Resources
from infra.config.secrets import SecretValue, named_secret

#: The word that allows every routed model (refused in prod by the pack's ``model-allow-list``).
ALL_MODELS = "*"
#: Budget windows: stack key → Envoy Gateway ``RateLimitUnit`` (api/v1alpha1/ratelimit_types.go, v1.9).
WINDOWS: dict[str, Literal["Minute", "Day", "Month"]] = {
    "tokensPerMinute": "Minute",
    "tokensPerDay": "Day",
    "tokensPerMonth": "Month",
}
#: Redis pinned by tag (Docker Official Image, Alpine variant: small; run as the project's UID 10001); prod's
#: ``image-tag-pinned`` asks for a digest too: set ``quotas.redis.image.digest`` from your mirror.
REDIS_IMAGE = ImageRef(repository="docker.io/library/redis", tag="7.4.6-alpine")
#: Name of the rate limit's Redis Deployment, Service, Secret and ServiceAccount (controller namespace).
REDIS_NAME = "slm-ratelimit-redis"
#: Key of the Redis Secret holding the password alone (the rate-limit service's ``REDIS_AUTH``).
REDIS_PASSWORD_KEY = "password"
#: A client name as it appears in the key Secret and the forwarded client-id header (a Secret data key).
_CLIENT = re.compile(r"[-._a-zA-Z0-9]{1,253}")


class RedisResources(Resources):
    """CPU and memory of the rate limit's Redis (a few counters per client and window)."""

    requests: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="50m", memory="64Mi"), description="What the scheduler reserves."
    )
    limits: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="500m", memory="256Mi"), description="The most Redis may use."
    )


class RateLimitRedis(ConfigModel):
    """The Redis holding the rate-limit counters, deployed hardened in the gateway controller's namespace."""

    password: str = Field(
        description="Key under `secrets` holding Redis's password (at least 16 characters); Redis refuses "
        "clients without it, and the rate-limit service gets it from a Secret (`REDIS_AUTH`)."
    )
    namespace: DnsLabel = Field(
        "slm-ratelimit",
        description="Redis's own namespace (Pod Security restricted, default-deny network policy); the rate-limit "
        "service in the controller's namespace is its only client.",
    )
    image: ImageRef = Field(default_factory=lambda: REDIS_IMAGE, description="Redis image, pinned.")
    resources: RedisResources = Field(default_factory=RedisResources, description="CPU and memory of Redis.")
    persistence: Literal["none"] = Field(
        "none",
        description="`none`: the counters live in memory only (no PVC). A Redis restart forgives the budgets "
        "already spent in the current windows; the decision and its trade-off are in docs/quotas.md.",
    )


class ClientQuota(ConfigModel):
    """What one API-key client may call and how many tokens it may spend (prompt plus completion)."""

    models: list[str] = Field(
        min_length=1,
        description='Config names of the routed models the client may call; `["*"]` for every routed model '
        "(refused in prod by the pack). Another model answers 403 at the gateway.",
    )
    tokens_per_minute: int | None = Field(None, ge=1, description="Tokens per minute; unset: no per-minute budget.")
    tokens_per_day: int | None = Field(None, ge=1, description="Tokens per day (UTC); unset: no daily budget.")
    tokens_per_month: int | None = Field(None, ge=1, description="Tokens per calendar month; unset: none.")

    @field_validator("models")
    @classmethod
    def _wildcard_alone(cls, value: list[str]) -> list[str]:
        if ALL_MODELS in value and len(value) > 1:
            raise ValueError('"*" already allows every routed model: give it alone, or list the models')
        if len(set(value)) != len(value):
            raise ValueError("lists a model twice")
        return value

    @model_validator(mode="after")
    def _budgets_grow_with_the_window(self) -> ClientQuota:
        # A longer window's budget at or below a shorter one's makes the shorter one dead, and two equal budgets
        # could not be told apart in the 429, which names the spent budget by its tokens (docs/quotas.md).
        given = [(key, tokens) for key, tokens in self._by_window().items() if tokens is not None]
        for (short, fewer), (long, more) in pairwise(given):
            if more <= fewer:
                raise ValueError(f"{long} ({more}) must be more than {short} ({fewer}), or {short} never limits")
        return self

    def _by_window(self) -> dict[str, int | None]:
        """Stack key → tokens, shortest window first."""
        return {
            "tokensPerMinute": self.tokens_per_minute,
            "tokensPerDay": self.tokens_per_day,
            "tokensPerMonth": self.tokens_per_month,
        }

    @property
    def budgets(self) -> dict[str, int]:
        """Envoy Gateway rate-limit unit → tokens, for the windows that have a budget."""
        return {WINDOWS[key]: tokens for key, tokens in self._by_window().items() if tokens is not None}

    @property
    def all_models(self) -> bool:
        return self.models == [ALL_MODELS]


class QuotasConfig(ConfigModel):
    """Per-client model allow-lists and token budgets; unset: every authenticated client may call every model."""

    clients: dict[str, ClientQuota] = Field(
        min_length=1,
        description="Client name (as in the entry point's API-key Secret) to its models and budgets. A client "
        "not listed here is refused (403) even with a valid key.",
    )
    redis: RateLimitRedis = Field(description="The Redis of the global rate limit.")

    @field_validator("clients")
    @classmethod
    def _client_names(cls, value: dict[str, ClientQuota]) -> dict[str, ClientQuota]:
        for name in value:
            if not _CLIENT.fullmatch(name):
                raise ValueError(
                    f"client '{name}' is not a key of the API-key Secret: letters, digits, '-', '_', '.' (1 to 253)"
                )
        return value


class _StackLike(Protocol):
    @property
    def secrets(self) -> Mapping[str, SecretValue]: ...


class _EntryLike(Protocol):
    @property
    def enabled(self) -> bool: ...

    @property
    def quotas(self) -> QuotasConfig | None: ...

    @property
    def api_keys(self) -> str | None: ...

    @property
    def existing_api_key_secret(self) -> str | None: ...

    def exposes(self, model: str) -> bool: ...


def check_quotas(
    entry: _EntryLike,
    stack: _StackLike,
    models: Sequence[tuple[str, str]],
    namespaces: Mapping[str, str],
    key_clients: set[str] | None,
) -> None:
    """Cross-field checks of ``entryPoint.quotas``; raises :class:`KeyPathError` at the offending key.

    ``models`` are (config name, served model name) of the stack's models; ``namespaces`` maps every namespace the
    stack uses otherwise to what uses it (Redis gets its own); ``key_clients`` are the client names of
    ``entryPoint.apiKeys`` when the stack holds them in plain text (``None``: not known offline).
    """
    quotas = entry.quotas
    if quotas is None or not entry.enabled:
        return
    at = ("entryPoint", "quotas")
    if entry.api_keys is None and entry.existing_api_key_secret is None:
        raise KeyPathError(
            (*at, "clients"), "quotas are per API-key client: set entryPoint.apiKeys or existingApiKeySecret"
        )
    routed = [name for name, _ in models if entry.exposes(name)]
    served: dict[str, str] = {}
    for name, api_name in models:
        if name in routed and served.setdefault(api_name, name) != name:
            raise KeyPathError(
                (*at, "clients"),
                f"models '{served[api_name]}' and '{name}' are both served as '{api_name}': the gateway picks the "
                "model by the request's model field, so give each routed model its own servedModelName",
            )
    for client, quota in quotas.clients.items():
        for index, model in enumerate(quota.models):
            if model != "*" and model not in routed:
                raise KeyPathError(
                    (*at, "clients", client, "models", index),
                    f"names model '{model}', which is not routed through the entry point (routed: "
                    f"{', '.join(routed) or 'none'})",
                )
    if quotas.redis.namespace in namespaces:
        raise KeyPathError(
            (*at, "redis", "namespace"),
            f"namespace '{quotas.redis.namespace}' is the {namespaces[quotas.redis.namespace]}'s: give Redis its own",
        )
    password = named_secret(stack.secrets, quotas.redis.password, (*at, "redis", "password"))
    if password.plaintext is not None and len(password.plaintext) < 16:
        raise KeyPathError(("secrets", quotas.redis.password), "the Redis password must be at least 16 characters")
    for client in quotas.clients:
        if key_clients is not None and client not in key_clients:
            # The client's name is this stack file's (not the secret's): naming it leaks nothing.
            raise KeyPathError(
                (*at, "clients", client), f"client '{client}' has no key in the secret entryPoint.apiKeys"
            )
