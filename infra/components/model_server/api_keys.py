"""The stack's API keys inside a model's namespace, so that its server checks them too (authentication in depth).

The entry point checks keys at the edge; a server that checks them as well cannot be called without a key by the
pods the network policy lets through. A Secret cannot be mounted from another namespace, so the keys are written
again into one here, in the file format the engine reads (:class:`~infra.engines.base.ApiKeyFile`), and mounted
read-only. A server that accepts one key only (vLLM's ``VLLM_API_KEY``) gets a key of its own instead, derived
from the clients' keys, and the Secret also holds it as the ``credential`` the entry point sends in place of the
client's key (Envoy Gateway's credential injection). With ``existingApiKeySecret`` the stack knows no key: the
pods use a Secret of that name from their own namespace, with the same data keys (see docs/entry-point.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    EnvVarArgs,
    EnvVarSourceArgs,
    KeyToPathArgs,
    SecretKeySelectorArgs,
    SecretVolumeSourceArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.config.entry_point import keys_of_secret
from infra.config.objects import MODEL_API_KEYS_SUFFIX
from infra.engines.base import ApiKeyFile

#: The Secret's data keys, one per file format, and the key Prometheus scrapes with.
JSON_FILE = "api-keys.json"
LINES_FILE = "api-keys.txt"
METRICS_KEY = "metrics-key"
#: A one-key server's key, and the same as the header value the entry point sends (Envoy Gateway reads the data key
#: ``credential`` of the Secret an HTTPRouteFilter's ``credentialInjection`` names: api/v1alpha1/
#: httproutefilter_types.go, ``InjectedCredentialKey``).
SERVER_KEY = "server-key"
CREDENTIAL_KEY = "credential"
#: The same key again under the data key Envoy AI Gateway's ``BackendSecurityPolicy`` (type ``APIKey``) reads and
#: sends as ``Authorization: Bearer <key>`` (api/v1beta1/backendsecurity_policy.go, internal/backendauth/api_key.go):
#: with ``entryPoint.quotas`` the model is routed by the AI Gateway, which sends it instead of the HTTPRouteFilter.
AI_GATEWAY_KEY = "apiKey"
VOLUME = "api-keys"
MOUNT_PATH = "/var/run/secrets/slm-deploy/api-keys"
#: Read-only for the owner and the pod's fsGroup (the non-root server reads it through the group).
FILE_MODE = 0o440
#: Names what the scrape key is derived for; changing it rotates every scrape key.
_SCRAPE_CONTEXT = b"slm-deploy prometheus scrape key v1"
#: Names what a model's own server key is derived for (with the model's name); changing it rotates every one.
_SERVER_KEY_CONTEXT = "slm-deploy model server key v1"


def file_name(check: ApiKeyFile) -> str:
    return JSON_FILE if check.file_format == "json" else LINES_FILE


def file_path(check: ApiKeyFile) -> str:
    """Where the server reads the keys."""
    return f"{MOUNT_PATH}/{file_name(check)}"


def scrape_key(keys: Mapping[str, str]) -> str:
    """A key for Prometheus alone, derived from the clients' keys: stable while they are, new when one changes.

    It is accepted by the model's server only (the gateway does not know it), and it reveals no client key.
    """
    return _derived(keys, _SCRAPE_CONTEXT)


def _derived(keys: Mapping[str, str], context: bytes) -> str:
    """HMAC-SHA256 of ``context`` keyed by every client and key: stable while they are, new when one changes."""
    material = "\n".join(f"{client}\n{key}" for client, key in sorted(keys.items())).encode()
    return hmac.new(material, context, hashlib.sha256).hexdigest()


def server_key(keys: Mapping[str, str], model: str) -> str:
    """The one key a model's server accepts, derived from the clients' keys and the model's name.

    Each model has its own (a key read in one model's namespace opens no other model), it is new whenever a client
    key changes, the gateway does not accept it from clients, and it reveals no client key.
    """
    return _derived(keys, f"{_SERVER_KEY_CONTEXT}\n{model}".encode())


def server_key_data(text: str, model: str) -> dict[str, str]:
    """The Secret's data for a one-key server: its key, and the header the entry point sends; in a secret Output."""
    key = server_key(keys_of_secret(text), model)
    return {SERVER_KEY: key, CREDENTIAL_KEY: f"Bearer {key}", AI_GATEWAY_KEY: key}


def secret_data(text: str, check: ApiKeyFile) -> dict[str, str]:
    """The Secret's data for ``check`` from the stack secret's value; runs inside a secret Output."""
    keys = keys_of_secret(text)
    extra = {METRICS_KEY: scrape_key(keys)} if check.metrics_need_key else {}
    if check.file_format == "json":
        return {JSON_FILE: json.dumps({**keys, **({"prometheus": extra[METRICS_KEY]} if extra else {})}), **extra}
    # One key per line, as llama-server reads them (no key starts with '#' or holds a line break: checked on read).
    return {LINES_FILE: "".join(f"{key}\n" for key in [*keys.values(), *extra.values()]), **extra}


@dataclass
class ModelApiKeysArgs:
    #: Names the Secret (the model name).
    model: str
    #: The model's namespace (an output of the Namespace, so the Secret waits for it).
    namespace: pulumi.Input[str]
    #: How the engine reads keys: from a file (``ApiKeyFile``), or one key from this variable (a name).
    check: ApiKeyFile | str
    #: The stack secret holding the keys (a JSON object of client name to key), or ``None`` with ``existing_secret``.
    keys: pulumi.Input[str] | None = None
    #: A Secret of this name in the model's namespace, managed outside the stack, instead of ``keys``.
    existing_secret: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiKeyWiring:
    """What the server's pod gets: the volume and its mount (a key file), and how the server is pointed at it."""

    volume: VolumeArgs | None
    volume_mount: VolumeMountArgs | None
    env: list[EnvVarArgs]
    args: list[str]
    #: (Secret name, data key) Prometheus sends as a bearer token, when the metrics endpoint needs a key.
    scrape_credentials: tuple[str, str] | None
    #: The Secret whose ``credential`` the entry point sends instead of the client's key (a one-key server);
    #: ``None``: the server checks the clients' own keys, which the entry point forwards.
    credential_secret: str | None = None


class ModelApiKeys(pulumi.ComponentResource):
    """The API keys in the model's namespace, and how its server reads them."""

    secret: k8s.core.v1.Secret | None
    wiring: ApiKeyWiring

    def __init__(self, name: str, args: ModelApiKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:secrets:ModelApiKeys", name, None, opts)
        if (args.keys is None) == (args.existing_secret is None):
            raise ValueError("ModelApiKeys needs exactly one of keys and existing_secret")
        check = args.check
        self.secret = None
        secret_name = args.existing_secret or f"{args.model}{MODEL_API_KEYS_SUFFIX}"
        if args.keys is not None:
            # Formatted inside the secret Output: the keys stay a Pulumi secret end to end.
            model = args.model
            data = pulumi.Output.secret(args.keys).apply(
                lambda text: server_key_data(text, model) if isinstance(check, str) else secret_data(text, check)
            )
            self.secret = k8s.core.v1.Secret(
                f"{name}-secret",
                metadata=ObjectMetaArgs(name=secret_name, namespace=args.namespace, labels=args.labels),
                type="Opaque",
                string_data=data,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.wiring = (
            _server_key_wiring(secret_name, check) if isinstance(check, str) else _file_wiring(secret_name, check)
        )
        outputs = {"file": file_path(check)} if isinstance(check, ApiKeyFile) else {"variable": check}
        self.register_outputs({"secret": secret_name, **outputs})


def _file_wiring(secret_name: str, check: ApiKeyFile) -> ApiKeyWiring:
    path = file_path(check)
    return ApiKeyWiring(
        # Only the server's file is projected: the scrape key stays out of the pod's filesystem.
        volume=VolumeArgs(
            name=VOLUME,
            secret=SecretVolumeSourceArgs(
                secret_name=secret_name,
                items=[KeyToPathArgs(key=file_name(check), path=file_name(check))],
                default_mode=FILE_MODE,
            ),
        ),
        volume_mount=VolumeMountArgs(name=VOLUME, mount_path=MOUNT_PATH, read_only=True),
        env=[EnvVarArgs(name=check.path_env, value=path)] if check.path_env else [],
        args=[check.path_flag, path] if check.path_flag else [],
        scrape_credentials=(secret_name, METRICS_KEY) if check.metrics_need_key else None,
    )


def _server_key_wiring(secret_name: str, variable: str) -> ApiKeyWiring:
    """The key by reference into the variable: never in the pod spec, never on the command line."""
    return ApiKeyWiring(
        volume=None,
        volume_mount=None,
        env=[
            EnvVarArgs(
                name=variable,
                value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=secret_name, key=SERVER_KEY)),
            )
        ],
        args=[],
        scrape_credentials=None,
        credential_secret=secret_name,
    )
