"""The stack's optional chat page (``slm-deploy:chatUi``): Open WebUI behind the entry point, off by default.

The UI has its own host name on the entry point's Gateway (its own HTTPS listener; the browser never sends an
API key, users log in to the UI) and calls the models through the gateway's API listener with an API key of its
own, like any other client. See ``docs/chat-ui.md``. Cross-section checks are in :func:`check_chat_ui`, which
``StackConfig`` calls from a model validator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import Field, field_validator

from infra.config.base import ConfigModel, KeyPathError
from infra.config.entry_point import EntryPointConfig, EntryPointTls, host_name, parse_api_keys
from infra.config.images import ImageRef
from infra.config.names import DnsLabel, Quantity, StorageClassName
from infra.config.resources import ResourceList, Resources
from infra.config.secrets import OFFLINE_SECRET_PLACEHOLDER, SecretValue, named_secret
from infra.hardening import Hardening

#: Key of the chat UI in the ``slm-deploy`` config namespace.
CONFIG_KEY = "chatUi"
#: The ChatUi component's name in the program; its children are named ``<name>-<child>``.
CHAT_UI_RESOURCE = "chat-ui"
#: Open WebUI's image. 0.7.2 is the appVersion of the project's own Helm chart (open-webui/helm-charts 10.3.1).
OPEN_WEBUI_REPOSITORY = "ghcr.io/open-webui/open-webui"
OPEN_WEBUI_TAG = "0.7.2"
#: A session-signing secret shorter than this is refused (it signs every login token).
MIN_SESSION_SECRET = 32


class ChatStorage(ConfigModel):
    """The PersistentVolumeClaim of the UI's data: its SQLite database (users, chats), uploads, caches."""

    size: Quantity = Field("5Gi", description="Capacity of the data volume.")
    storage_class: StorageClassName | None = Field(
        None, description="StorageClass name; the cluster default when unset."
    )


class ChatUiConfig(ConfigModel):
    """A browser chat page (Open WebUI) for the routed models, on its own host name behind the entry point."""

    enabled: bool = Field(False, description="Deploy the chat UI (needs `entryPoint.enabled`).")
    namespace: DnsLabel = Field("slm-chat", description="Namespace of the UI, its data volume and its secrets.")
    hostname: str | None = Field(
        None,
        description="Host name users open (`chat.example.com`); required when enabled, and not the entry point's "
        "API host name: the UI gets its own HTTPS listener on the Gateway, without the API-key check.",
    )
    tls: EntryPointTls | None = Field(
        None,
        description="The UI host's certificate; unset: a cert-manager `Certificate` from the entry point's "
        "`tls.issuerRef` (required when the entry point uses `tls.secretName`).",
    )
    api_key_client: str | None = Field(
        None,
        description="The UI's own client in `entryPoint.apiKeys`: its key is what the UI sends to the gateway "
        "(the gateway then names the caller `x-slm-client: <client>`).",
    )
    api_key: str | None = Field(
        None,
        description="Key under `secrets` holding the UI's API key, when the entry point uses "
        "`existingApiKeySecret` (add the same key to that Secret). Give `apiKeyClient` or this when the entry "
        "point checks keys.",
    )
    session_secret: str | None = Field(
        None,
        description="Key under `secrets` holding the key that signs the UI's login tokens (`WEBUI_SECRET_KEY`, "
        f"at least {MIN_SESSION_SECRET} characters); required when enabled.",
    )
    models: list[DnsLabel] | None = Field(
        None,
        min_length=1,
        description="The routed models the UI offers; every model routed by the entry point when unset.",
    )
    image: ImageRef = Field(
        default_factory=lambda: ImageRef(repository=OPEN_WEBUI_REPOSITORY, tag=OPEN_WEBUI_TAG),
        description=f"Open WebUI's image (default `{OPEN_WEBUI_REPOSITORY}:{OPEN_WEBUI_TAG}`; pin a digest in prod).",
    )
    ca_config_map: DnsLabel | None = Field(
        None,
        description="A ConfigMap in the UI's namespace with key `ca.crt`: the CA that signed the entry point's "
        "certificate, when it is not a public one (the UI verifies the gateway's certificate).",
    )
    storage: ChatStorage = Field(default_factory=ChatStorage, description="The UI's data volume.")
    resources: Resources = Field(
        default_factory=lambda: Resources(
            requests=ResourceList(cpu="250m", memory="1Gi"), limits=ResourceList(cpu="2", memory="2Gi")
        ),
        description="CPU and memory of the UI (it loads a small embedding model at start).",
    )
    hardening: Hardening = Field(
        default_factory=Hardening, description="Pod and container security settings (restricted by default)."
    )

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        return None if value is None else host_name(value)

    def offers(self, model: str) -> bool:
        """Whether the UI lists the routed model ``model``."""
        return self.models is None or model in self.models


def client_key(keys: str, client: str) -> str:
    """The key of ``client`` in the entry point's API-key secret (run inside its secret Output)."""
    if keys == OFFLINE_SECRET_PLACEHOLDER:
        return keys  # offline, without the stack's passphrase: the placeholder stands in for the key too
    return parse_api_keys(keys)[client]


class _ModelLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def k8s_namespace(self) -> str: ...


class _StackLike(Protocol):
    @property
    def entry_point(self) -> EntryPointConfig: ...

    @property
    def secrets(self) -> Mapping[str, SecretValue]: ...

    @property
    def models(self) -> Sequence[_ModelLike]: ...


def check_chat_ui(chat: ChatUiConfig, stack: _StackLike) -> None:
    """Cross-section checks of ``chatUi``; raises :class:`KeyPathError` at the key to fix."""
    if not chat.enabled:
        return
    entry = stack.entry_point
    if not entry.enabled:
        raise KeyPathError(
            (CONFIG_KEY, "enabled"), "the chat UI is served behind the entry point: set entryPoint.enabled too"
        )
    if chat.hostname is None:
        raise KeyPathError((CONFIG_KEY, "hostname"), "enabled is true but hostname is not set (chat.example.com)")
    if chat.hostname == entry.hostname:
        raise KeyPathError(
            (CONFIG_KEY, "hostname"),
            f"'{chat.hostname}' is the entry point's API host: give the UI its own host name (its listener has no "
            "API-key check)",
        )
    if chat.tls is None and (entry.tls is None or entry.tls.issuer_ref is None):
        raise KeyPathError(
            (CONFIG_KEY, "tls"),
            "the entry point's certificate is an existing secret, so there is no issuer to ask for the UI's: set "
            "tls.issuerRef or tls.secretName",
        )
    routed = [model.name for model in stack.models if entry.exposes(model.name)]
    for index, name in enumerate(chat.models or []):
        if name not in routed:
            raise KeyPathError(
                (CONFIG_KEY, "models", index),
                f"names model '{name}', which the entry point does not route (routed: {', '.join(routed)})",
            )
    if chat.session_secret is None:
        raise KeyPathError(
            (CONFIG_KEY, "sessionSecret"),
            "enabled is true but sessionSecret is not set: name a secret that signs the UI's login tokens",
        )
    session = named_secret(stack.secrets, chat.session_secret, (CONFIG_KEY, "sessionSecret"))
    if session.plaintext is not None and len(session.plaintext) < MIN_SESSION_SECRET:
        raise KeyPathError(("secrets", chat.session_secret), f"must be at least {MIN_SESSION_SECRET} characters")
    _check_api_key(chat, stack)


def _check_api_key(chat: ChatUiConfig, stack: _StackLike) -> None:
    entry = stack.entry_point
    if chat.api_key_client is not None and chat.api_key is not None:
        raise KeyPathError((CONFIG_KEY, "apiKey"), "give either apiKeyClient or apiKey, not both")
    if chat.api_key_client is not None:
        if entry.api_keys is None:
            raise KeyPathError(
                (CONFIG_KEY, "apiKeyClient"),
                "names a client of entryPoint.apiKeys, which is not set: use apiKey with existingApiKeySecret",
            )
        keys = named_secret(stack.secrets, entry.api_keys, (CONFIG_KEY, "apiKeyClient")).plaintext
        if keys is not None and chat.api_key_client not in _clients(keys):
            raise KeyPathError(
                (CONFIG_KEY, "apiKeyClient"),
                f"'{chat.api_key_client}' is not a client in the secret '{entry.api_keys}' (entryPoint.apiKeys)",
            )
        quotas = entry.quotas
        if quotas is not None and chat.api_key_client not in quotas.clients:
            raise KeyPathError(
                (CONFIG_KEY, "apiKeyClient"),
                f"'{chat.api_key_client}' has no entry under entryPoint.quotas.clients: the gateway would refuse "
                "the UI's requests (403); give it its models and budgets there",
            )
    elif chat.api_key is not None:
        if entry.api_keys is not None:
            raise KeyPathError(
                (CONFIG_KEY, "apiKey"),
                "the gateway checks the keys of entryPoint.apiKeys: add the UI as a client there and set "
                "apiKeyClient instead",
            )
        key = named_secret(stack.secrets, chat.api_key, (CONFIG_KEY, "apiKey")).plaintext
        if key is not None and len(key) < 16:
            raise KeyPathError(("secrets", chat.api_key), "must be at least 16 characters (an API key)")
    elif entry.api_keys is not None or entry.existing_api_key_secret is not None:
        raise KeyPathError(
            (CONFIG_KEY, "apiKeyClient"),
            "the entry point checks API keys: give the UI its own, as a client of entryPoint.apiKeys "
            "(apiKeyClient) or as a secret (apiKey) also added to entryPoint.existingApiKeySecret",
        )


def _clients(text: str) -> set[str]:
    try:
        return set(parse_api_keys(text))
    except ValueError:
        return set()  # the entry point's own check reports a malformed key set, at its own key
