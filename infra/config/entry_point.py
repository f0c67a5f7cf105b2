"""The stack's optional entry point: one authenticated HTTPS front door for every model (``slm-deploy:entryPoint``).

It is implemented with the Kubernetes Gateway API and Envoy Gateway (see ``docs/entry-point.md``).
Cross-field checks that need the rest of the stack (environment, secrets, models) live in
:func:`check_entry_point`, which ``StackConfig`` calls from a model validator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from pydantic import Field, field_validator, model_validator

from infra.config.base import ConfigModel, KeyPathError
from infra.config.k8s_names import DNS_SUBDOMAIN, refuse
from infra.config.names import DnsLabel
from infra.config.quotas import QuotasConfig
from infra.config.secrets import OFFLINE_SECRET_PLACEHOLDER, SecretValue, named_secret

#: The Envoy Gateway release (Helm chart and controller) installed by ``installController``.
ENVOY_GATEWAY_VERSION = "v1.9.3"
#: Key of the entry point in the ``slm-deploy`` config namespace.
CONFIG_KEY = "entryPoint"
#: The EntryPoint component's name in the program; its children are named ``<name>-<child>``.
ENTRY_POINT_RESOURCE = "entry-point"
#: The child (an ``EnvoyProxy``) that asks Envoy Gateway for the proxy Service and its load balancer.
PROXY_CONFIG_CHILD = "proxy-config"
Exposure = Literal["cluster", "internal", "public"]

_HOST_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
#: Keys of a Kubernetes Secret's data (the client names of the API-key secret).
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
#: An API key: it travels in an HTTP header, and llama-server's key file takes one per line and skips lines
#: starting with ``#`` (comments), so visible ASCII only, no leading ``#``.
_KEY_TEXT = re.compile(r"[!-\"$-~][!-~]*")
#: Gateway API ``Duration``: one to four number+unit pairs (``300s``, ``1h30m``).
_DURATION = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")
_VERSION = re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+")


def host_name(value: str) -> str:
    """``value`` if it is a fully qualified host name a listener can serve (also the chat UI's host)."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or any(not _HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"'{value}' is not a fully qualified host name (lower-case DNS labels separated by dots, "
            "no wildcard, no scheme or port)"
        )
    return value


class IssuerRef(ConfigModel):
    """A cert-manager issuer that signs the entry point's certificate."""

    name: str = Field(min_length=1, description="Name of the cert-manager Issuer or ClusterIssuer (a DNS subdomain).")
    kind: Literal["Issuer", "ClusterIssuer"] = Field(
        "ClusterIssuer", description="`ClusterIssuer`, or `Issuer` (which must live in the entry point's namespace)."
    )

    @field_validator("name")
    @classmethod
    def _object_name(cls, value: str) -> str:
        return refuse(DNS_SUBDOMAIN, value, "issuer name")


class EntryPointTls(ConfigModel):
    """Where the entry point's TLS certificate comes from: exactly one of `issuerRef` and `secretName`."""

    issuer_ref: IssuerRef | None = Field(
        None, description="cert-manager issuer: a `Certificate` for the hostname is created and kept renewed."
    )
    secret_name: DnsLabel | None = Field(
        None,
        description="An existing `kubernetes.io/tls` Secret in the entry point's namespace, managed elsewhere.",
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> EntryPointTls:
        if self.issuer_ref is not None and self.secret_name is not None:
            raise ValueError(
                "give either issuerRef (cert-manager issues the certificate) or secretName (an existing TLS "
                "secret), not both"
            )
        if self.issuer_ref is None and self.secret_name is None:
            raise ValueError(
                "TLS is required: set issuerRef (a cert-manager Issuer or ClusterIssuer) or secretName (an "
                "existing TLS secret in the entry point's namespace)"
            )
        return self

    @property
    def certificate_secret(self) -> str:
        """Name of the TLS Secret the Gateway listener serves (created by cert-manager or given)."""
        return self.secret_name or "slm-entry-point-tls"


class EntryPointConfig(ConfigModel):
    """One HTTPS entry point for all models: Gateway API + Envoy Gateway, TLS and API keys before any model."""

    enabled: bool = Field(False, description="Create the entry point.")
    namespace: DnsLabel = Field(
        "slm-gateway", description="Namespace of the Gateway, its proxies, the TLS secret and the API keys."
    )
    hostname: str | None = Field(None, description="Host name clients call (`llm.example.com`); required when enabled.")
    gateway_class_name: DnsLabel = Field(
        "eg", description="GatewayClass of Envoy Gateway (created when `installController` is true)."
    )
    tls: EntryPointTls | None = Field(None, description="The TLS certificate; required when enabled.")
    api_keys: str | None = Field(
        None,
        description="Key under `secrets` holding the API keys, a JSON object of client name to key "
        '(`{"team-a": "…", "ci": "…"}`); unset: no authentication (refused for public exposure in prod).',
    )
    existing_api_key_secret: DnsLabel | None = Field(
        None,
        description="Name of an existing Secret in the entry point's namespace holding the API keys (client name to "
        "key), managed outside this stack (e.g. synced from Key Vault); instead of `apiKeys`. With `modelsCheckKeys`, "
        "routed onnx and llamacpp models mount a Secret of the same name from their own namespace, which must exist "
        "there too (data keys in docs/entry-point.md).",
    )
    models_check_keys: bool = Field(
        True,
        description="With `apiKeys` or `existingApiKeySecret`: the routed models whose server can check API keys "
        "(`onnx`, `llamacpp`) check them too, from a Secret mounted in their own namespace, and the gateway forwards "
        "the key; pods that the network policy lets call a model cannot skip the check. `false`: only the gateway "
        "checks keys and removes them before forwarding.",
    )
    exposure: Exposure = Field(
        "internal",
        description="`internal`: an Azure internal load balancer; `cluster`: ClusterIP only; `public`: a public "
        "load balancer (prod: only with `apiKeys`).",
    )
    install_controller: bool = Field(
        False,
        description="Install Envoy Gateway (Helm chart `gateway-helm`, pinned by `controllerVersion`) and its "
        "GatewayClass; leave false when the cluster already runs it.",
    )
    controller_version: str = Field(
        ENVOY_GATEWAY_VERSION, description="Envoy Gateway chart version, for `installController`."
    )
    controller_namespace: DnsLabel = Field(
        "envoy-gateway-system", description="Namespace of the Envoy Gateway controller."
    )
    proxy_placement: Literal["gateway-namespace", "controller-namespace"] = Field(
        "gateway-namespace",
        description="Where the controller runs proxy pods: in the Gateway's namespace (`GatewayNamespace` deploy "
        "mode, set by `installController`) or in the controller's namespace (Envoy Gateway's default).",
    )
    replicas: int = Field(2, ge=1, description="Envoy proxy replicas.")
    request_timeout: str = Field(
        "300s", description="Longest a request (a whole streamed completion included) may take, e.g. `300s`."
    )
    models: list[DnsLabel] | None = Field(
        None, min_length=1, description="Names of the models routed through the entry point; every model when unset."
    )
    quotas: QuotasConfig | None = Field(
        None,
        description="Per-client model allow-lists and token budgets (Envoy AI Gateway + a global rate limit in "
        "Redis, docs/quotas.md). Set: models are called at `https://<hostname>/v1` with the served model name in "
        "the request, instead of per-model paths.",
    )

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        return None if value is None else host_name(value)

    @field_validator("request_timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        if not _DURATION.fullmatch(value):
            raise ValueError(f"'{value}' is not a Gateway API duration (for example 300s, 5m, 1h30m)")
        return value

    @field_validator("controller_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError(f"'{value}' is not a pinned Envoy Gateway release (vMAJOR.MINOR.PATCH, e.g. v1.9.3)")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> EntryPointConfig:
        if not self.enabled:
            return self
        if self.hostname is None:
            raise ValueError("enabled is true but hostname is not set: name the host clients call (llm.example.com)")
        if self.tls is None:
            raise ValueError(
                "enabled is true but tls is not set: TLS is required (tls.issuerRef for cert-manager, or "
                "tls.secretName for an existing TLS secret)"
            )
        if self.api_keys is not None and self.existing_api_key_secret is not None:
            raise ValueError(
                "give either apiKeys (a stack secret) or existingApiKeySecret (a Secret you manage), not both"
            )
        if self.install_controller and self.proxy_placement != "gateway-namespace":
            raise ValueError(
                "installController installs Envoy Gateway in GatewayNamespace mode, so proxyPlacement must be "
                "'gateway-namespace'"
            )
        return self

    def exposes(self, model: str) -> bool:
        """Whether the model ``model`` (its config name) gets a route."""
        return self.enabled and (self.models is None or model in self.models)

    @property
    def proxy_namespace(self) -> str:
        """Namespace in which Envoy Gateway runs this entry point's proxy pods."""
        return self.namespace if self.proxy_placement == "gateway-namespace" else self.controller_namespace


class _ModelLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def k8s_namespace(self) -> str: ...


class _StackLike(Protocol):
    @property
    def environment(self) -> str: ...

    @property
    def secrets(self) -> Mapping[str, SecretValue]: ...

    @property
    def models(self) -> Sequence[_ModelLike]: ...


def _ordinal(position: int) -> str:
    suffix = "th" if 10 <= position % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(position % 10, "th")
    return f"{position}{suffix}"


def parse_api_keys(text: str) -> dict[str, str]:
    """The API keys of the secret's value: a JSON object of client name to key.

    Errors never quote anything from the value (it is secret, the client names too): they say what is wrong
    and where, by the client's position in the object.
    """
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(
            'is not JSON: give the API keys as a JSON object of client name to key, {"team-a": "<key>"}'
        ) from None
    if not isinstance(value, dict) or not value:
        raise ValueError('must be a non-empty JSON object of client name to key, {"team-a": "<key>"}')
    keys: dict[str, str] = {}
    seen: dict[str, int] = {}
    for position, (client, key) in enumerate(value.items(), start=1):
        if not _SECRET_KEY.fullmatch(client):
            raise ValueError(
                f"the {_ordinal(position)} client name may use only letters, digits, '-', '_' and '.' (1 to 253)"
            )
        if not isinstance(key, str) or len(key) < 16:
            raise ValueError(f"the key of the {_ordinal(position)} client must be a string of at least 16 characters")
        if not _KEY_TEXT.fullmatch(key):
            raise ValueError(
                f"the key of the {_ordinal(position)} client may use only visible ASCII characters (no spaces) and "
                "must not start with '#'"
            )
        if key in seen:
            raise ValueError(
                f"the {_ordinal(seen[key])} and {_ordinal(position)} clients have the same key: give each client "
                "its own"
            )
        seen[key] = position
        keys[client] = key
    return keys


def keys_of_secret(text: str) -> dict[str, str]:
    """The API keys of the secret's value (run inside its secret Output, so nothing is printed).

    Offline, without the stack's passphrase, the value is the placeholder: one placeholder client stands in for
    the real ones. A malformed value raises ``ValueError`` naming ``entryPoint.apiKeys``, never quoting it.
    """
    if text == OFFLINE_SECRET_PLACEHOLDER:
        return {"offline-placeholder": text}
    try:
        return parse_api_keys(text)
    except ValueError as error:
        raise ValueError(f"{CONFIG_KEY}.apiKeys: the secret {error}") from None


def check_entry_point(entry_point: EntryPointConfig, stack: _StackLike) -> None:
    """Cross-field checks of ``entryPoint`` against the rest of the stack; raises :class:`KeyPathError`.

    Call it from ``StackConfig``'s ``model_validator(mode="after")``: ``check_entry_point(self.entry_point, self)``.
    """
    if not entry_point.enabled:
        return
    names = [model.name for model in stack.models]
    for index, routed in enumerate(entry_point.models or []):
        if routed not in names:
            raise KeyPathError(
                (CONFIG_KEY, "models", index),
                f"names model '{routed}', which is not under models (known: {', '.join(names)})",
            )
    for model in stack.models:
        if entry_point.exposes(model.name) and model.k8s_namespace == entry_point.namespace:
            raise KeyPathError(
                (CONFIG_KEY, "namespace"),
                f"namespace '{entry_point.namespace}' is model '{model.name}''s namespace: give the entry point "
                "its own",
            )
    if entry_point.api_keys is not None:
        secret = named_secret(stack.secrets, entry_point.api_keys, (CONFIG_KEY, "apiKeys"))
        if secret.plaintext is not None:
            try:
                parse_api_keys(secret.plaintext)
            except ValueError as error:
                raise KeyPathError(("secrets", entry_point.api_keys), str(error)) from None
    authenticated = entry_point.api_keys is not None or entry_point.existing_api_key_secret is not None
    if entry_point.exposure == "public" and stack.environment == "prod" and not authenticated:
        raise KeyPathError(
            (CONFIG_KEY, "exposure"),
            "public exposure in prod needs TLS and API keys: set apiKeys to a secret holding the keys "
            "(or use exposure 'internal')",
        )
