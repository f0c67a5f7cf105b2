"""Every name the program derives from the stack config, checked at validate time as the API server checks it.

The components name their objects after the config: ``slm-<model>`` (the namespace), ``<model>`` (Deployment,
Service, ServiceAccount, PodDisruptionBudget, HTTPRoute, ServiceMonitor, ScaledObject or HPA,
VerticalPodAutoscaler),
``<model>-cache``, ``<model>-engine-config``, ``<model>-secrets``, ``<model>-prepare`` … This module lists those
objects (kind, namespace, name, the stack key the name comes from, the rules the name must follow) and checks
them before anything is rendered:

- each name against the API server's rule (a Service name is a DNS-1035 label, a namespace a DNS-1123 label, a
  Job's name is also a label value …), and each label value the config puts on objects;
- the namespaces Kubernetes owns (``kube-system`` …) and the stack's infrastructure namespaces (monitoring,
  KEDA, the entry point's) are never a model's namespace;
- two objects of the same kind, namespace and name are one object: a config error naming both keys.

The components import their objects' names from here (config may not import components); the test
``tests/unit/test_config_names.py`` plans stacks and checks that every object named after a model is listed
here under the same kind, namespace and name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from infra.config.autoscaling import AutoscalerInstall
from infra.config.base import KeyPath, KeyPathError, format_key_path
from infra.config.chat_ui import ChatUiConfig
from infra.config.cluster import AksCluster, ExistingCluster
from infra.config.entry_point import EntryPointConfig
from infra.config.k8s_names import (
    DNS_1035_LABEL,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    FEDERATED_CREDENTIAL,
    KEY_VAULT_SECRET,
    LABEL_VALUE,
    MAX_LABEL,
    RESERVED_NAMESPACES,
    NameRule,
    show,
)
from infra.config.model import MODEL_NAMESPACE_PREFIX, ModelConfig
from infra.config.monitoring import MonitoringConfig
from infra.config.secret_store import SecretStoreConfig
from infra.config.versions import workload_name

# Names the components give their objects, defined here once: the components import them (config imports no
# component), so the names checked are the names created.
CACHE_SUFFIX = "-cache"
ENGINE_CONFIG_SUFFIX = "-engine-config"
SECRETS_SUFFIX = "-secrets"
PREPARE_SUFFIX = "-prepare"
#: infra/components/model_server/api_keys.py: the API keys in a model's namespace.
MODEL_API_KEYS_SUFFIX = "-api-keys"
#: infra/components/entry_point.py: the HTTPRouteFilter (in the model's namespace) that sends a model's own key.
SERVER_KEY_FILTER_SUFFIX = "-server-key"
#: infra/components/entry_point.py
ENTRY_POINT_API_KEY_SECRET = "slm-entry-point-api-keys"
#: infra/components/monitoring.py
RECEIVER_SECRET = "slm-alert-receivers"
#: infra/components/chat_ui.py: Deployment, Service, ServiceAccount, PodDisruptionBudget and HTTPRoute of the UI,
#: its data volume and its Secret (in ``chatUi.namespace``); the certificate of its host (the entry point's namespace).
CHAT_UI_NAME = "chat-ui"
CHAT_UI_DATA = "chat-ui-data"
CHAT_UI_SECRET = "chat-ui-secrets"
CHAT_UI_TLS_SECRET = "slm-chat-ui-tls"
#: infra/components/aks/gpu_drivers.py: the GPU Operator's namespace (pools with `gpuDriver: none`).
GPU_OPERATOR_NAMESPACE = "gpu-operator"
#: Engines whose server reads the Hugging Face token (the model's Secret exists only then).
_ENGINES_READING_TOKEN = ("vllm",)
#: Engines whose server checks API keys: the clients' keys from a mounted file (``EngineSpec.api_key_file``), or one
#: key of the model's own (``EngineSpec.server_key_env``); a test keeps them in step.
ENGINES_CHECKING_KEYS = ("onnx", "llamacpp", "vllm")
#: Engines whose server accepts one key only: the entry point sends the model's own key (an HTTPRouteFilter).
ENGINES_WITH_SERVER_KEY = ("vllm",)
#: Engines that serve Prometheus metrics (a ServiceMonitor per model).
_ENGINES_WITH_METRICS = ("vllm", "onnx", "llamacpp")


def checks_api_keys(entry: EntryPointConfig, model: ModelConfig) -> bool:
    """Whether the model's server checks the stack's API keys too: routed, keys set, an engine that can."""
    has_keys = entry.api_keys is not None or entry.existing_api_key_secret is not None
    return entry.exposes(model.name) and entry.models_check_keys and has_keys and model.engine in ENGINES_CHECKING_KEYS


def key_vault_secret_name(model: str, key: str) -> str:
    """The Key Vault secret that holds one of a model's secrets (names take letters, digits and '-')."""
    return f"{MODEL_NAMESPACE_PREFIX}{model}-{key}"


@dataclass(frozen=True)
class DerivedObject:
    """One object the program creates (or refers to), named from the config."""

    kind: str
    #: ``None`` for a cluster-scoped object; for an Azure object, the scope that makes its name unique.
    namespace: str | None
    name: str
    #: The stack key the name comes from.
    key: KeyPath
    #: How a message refers to it: "the Service of model 'chat'".
    what: str
    rules: tuple[NameRule, ...] = ()
    #: False: an object the stack refers to but does not create (an existing Secret, a namespace it uses).
    creates: bool = True
    #: A namespace several keys may refer to without owning it (only collisions with a creator count).
    shared: bool = False
    #: Said after a broken rule: how to fix it.
    hint: str = ""
    #: Who creates it when the program does not register it itself ("Helm", "cert-manager").
    by: str = ""


@dataclass(frozen=True)
class DerivedLabel:
    """A label value taken from the config (``app.kubernetes.io/version: <image tag>`` …)."""

    label: str
    value: str
    key: KeyPath
    what: str
    hint: str = ""


class _StackLike(Protocol):
    @property
    def cluster(self) -> ExistingCluster | AksCluster: ...

    @property
    def monitoring(self) -> MonitoringConfig: ...

    @property
    def keda(self) -> AutoscalerInstall: ...

    @property
    def entry_point(self) -> EntryPointConfig: ...

    @property
    def chat_ui(self) -> ChatUiConfig: ...

    @property
    def secret_store(self) -> SecretStoreConfig: ...

    @property
    def models(self) -> Sequence[ModelConfig]: ...


def _infrastructure(stack: _StackLike) -> Iterator[DerivedObject]:
    """The stack's own namespaces and the objects in them whose names a model could take."""
    monitoring = stack.monitoring
    if monitoring.mode != "none":
        installs = monitoring.mode == "kube-prometheus-stack"
        yield DerivedObject(
            "Namespace",
            None,
            monitoring.namespace,
            ("monitoring", "namespace"),
            "the monitoring namespace",
            (DNS_LABEL,),
            creates=installs,
            shared=not installs,
        )
        if installs and monitoring.grafana:
            yield DerivedObject(
                "Secret",
                monitoring.namespace,
                monitoring.grafana_admin_secret,
                ("monitoring", "grafanaAdminSecret"),
                "Grafana's admin Secret",
                (DNS_SUBDOMAIN,),
                creates=False,
            )
        if installs and monitoring.receivers:
            yield DerivedObject(
                "Secret",
                monitoring.namespace,
                RECEIVER_SECRET,
                ("monitoring", "receivers"),
                "the Secret of the alert receivers' URLs",
            )
    if stack.keda.install:
        yield DerivedObject(
            "Namespace", None, stack.keda.namespace, ("keda", "namespace"), "KEDA's namespace", (DNS_LABEL,), by="Helm"
        )
    entry = stack.entry_point
    if entry.enabled:
        yield from _entry_point(entry)
    if stack.chat_ui.enabled:
        # Its own namespace: its default-deny policy must never land in a model's or the platform's.
        yield DerivedObject(
            "Namespace", None, stack.chat_ui.namespace, ("chatUi", "namespace"), "the chat UI's namespace", (DNS_LABEL,)
        )
    if isinstance(stack.cluster, AksCluster):
        for index, pool in enumerate(stack.cluster.gpu_pools):
            if pool.gpu_driver == "none":
                yield DerivedObject(
                    "Namespace",
                    None,
                    GPU_OPERATOR_NAMESPACE,
                    ("cluster", "gpuPools", index, "gpuDriver"),
                    "the GPU Operator's namespace",
                    shared=True,
                    by="Helm",
                )
                break


def _entry_point(entry: EntryPointConfig) -> Iterator[DerivedObject]:
    ns = entry.namespace
    yield DerivedObject("Namespace", None, ns, ("entryPoint", "namespace"), "the entry point's namespace", (DNS_LABEL,))
    yield DerivedObject(
        "Namespace",
        None,
        entry.controller_namespace,
        ("entryPoint", "controllerNamespace"),
        "Envoy Gateway's namespace",
        (DNS_LABEL,),
        creates=entry.install_controller,
        shared=not entry.install_controller,
    )
    if entry.install_controller:
        yield DerivedObject(
            "GatewayClass",
            None,
            entry.gateway_class_name,
            ("entryPoint", "gatewayClassName"),
            "the entry point's GatewayClass",
            (DNS_SUBDOMAIN,),
        )
    tls = entry.tls
    if tls is not None and tls.issuer_ref is not None:
        yield DerivedObject(
            "Secret",
            ns,
            tls.certificate_secret,
            ("entryPoint", "tls", "issuerRef"),
            "the TLS Secret cert-manager writes",
            by="cert-manager",
        )
    elif tls is not None and tls.secret_name is not None:
        yield DerivedObject(
            "Secret",
            ns,
            tls.secret_name,
            ("entryPoint", "tls", "secretName"),
            "the entry point's TLS Secret",
            (DNS_SUBDOMAIN,),
            creates=False,
        )
    if entry.api_keys is not None:
        yield DerivedObject(
            "Secret", ns, ENTRY_POINT_API_KEY_SECRET, ("entryPoint", "apiKeys"), "the Secret of the API keys"
        )
    if entry.existing_api_key_secret is not None:
        yield DerivedObject(
            "Secret",
            ns,
            entry.existing_api_key_secret,
            ("entryPoint", "existingApiKeySecret"),
            "the existing Secret of the API keys",
            (DNS_SUBDOMAIN,),
            creates=False,
        )


def _model_objects(stack: _StackLike, index: int, model: ModelConfig) -> Iterator[DerivedObject]:
    name, ns = model.name, model.k8s_namespace
    name_key: KeyPath = ("models", index, "name")
    ns_key: KeyPath = ("models", index, "namespace") if model.namespace else name_key
    of = f"of model '{name}'"
    room = MAX_LABEL - len(MODEL_NAMESPACE_PREFIX)
    yield DerivedObject(
        "Namespace",
        None,
        ns,
        ns_key,
        f"the namespace {of}",
        (DNS_LABEL,),
        hint="" if model.namespace else f"shorten the name to at most {room} characters, or set namespace",
    )
    yield DerivedObject("ServiceAccount", ns, name, name_key, f"the ServiceAccount {of}", (DNS_SUBDOMAIN, DNS_LABEL))
    if model.has_cache_volume:
        yield DerivedObject(
            "PersistentVolumeClaim", ns, f"{name}{CACHE_SUFFIX}", name_key, f"the model cache {of}", (DNS_SUBDOMAIN,)
        )
    yield from _workload_objects(model, name_key)
    prepare = model.engine == "onnx" and model.onnx is not None and model.onnx.prepare is not None
    if prepare:
        room = MAX_LABEL - len(PREPARE_SUFFIX)
        yield DerivedObject(
            "Job",
            ns,
            f"{name}{PREPARE_SUFFIX}",
            name_key,
            f"the preparation Job {of} (its name is also the pods' job-name label)",
            (DNS_SUBDOMAIN, LABEL_VALUE),
            hint=f"shorten the name to at most {room} characters",
        )
    if model.hf_token_secret and (model.engine in _ENGINES_READING_TOKEN or prepare):
        yield from _model_secrets(stack, index, model, model.hf_token_secret)
    if stack.monitoring.mode != "none" and model.engine in _ENGINES_WITH_METRICS:
        yield DerivedObject("ServiceMonitor", ns, name, name_key, f"the ServiceMonitor {of}", (DNS_SUBDOMAIN,))
    if model.autoscaling.enabled:
        kind = "ScaledObject" if model.autoscaling.backend == "keda" else "HorizontalPodAutoscaler"
        yield DerivedObject(kind, ns, name, name_key, f"the {kind} {of}", (DNS_SUBDOMAIN, LABEL_VALUE))
    if model.scales_to_zero:
        yield DerivedObject("HTTPScaledObject", ns, name, name_key, f"the HTTPScaledObject {of}", (DNS_SUBDOMAIN,))
    if model.vpa.enabled:
        yield DerivedObject(
            "VerticalPodAutoscaler", ns, name, name_key, f"the VerticalPodAutoscaler {of}", (DNS_SUBDOMAIN,)
        )
    if stack.entry_point.exposes(name):
        yield DerivedObject("HTTPRoute", ns, name, name_key, f"the HTTPRoute {of}", (DNS_SUBDOMAIN,))
    if checks_api_keys(stack.entry_point, model) and model.engine in ENGINES_WITH_SERVER_KEY:
        yield DerivedObject(
            "HTTPRouteFilter",
            ns,
            f"{name}{SERVER_KEY_FILTER_SUFFIX}",
            name_key,
            f"the HTTPRouteFilter that sends the server key {of}",
            (DNS_SUBDOMAIN,),
        )
    if checks_api_keys(stack.entry_point, model):
        existing = stack.entry_point.existing_api_key_secret
        yield DerivedObject(
            "Secret",
            ns,
            existing or f"{name}{MODEL_API_KEYS_SUFFIX}",
            ("entryPoint", "existingApiKeySecret") if existing else name_key,
            f"the API-key Secret {of}",
            (DNS_SUBDOMAIN,),
            creates=existing is None,
        )


def _workload_objects(model: ModelConfig, name_key: KeyPath) -> Iterator[DerivedObject]:
    """The Deployment, Service, budget and engine ConfigMap of the model, or of each revision of a canary rollout
    (``<model>-<version>``, and its own cache when the canary loads other weights)."""
    ns, of = model.k8s_namespace, f"of model '{model.name}'"
    served: list[tuple[str, ModelConfig, KeyPath, str]] = [(model.name, model, name_key, of)]
    if model.versions is not None:
        index = name_key[1]
        served = [
            (
                workload_name(model.name, version.name),
                model.revision(version),
                ("models", index, "versions", track, "name"),
                f"of the {track} revision '{version.name}' of model '{model.name}'",
            )
            for track, version in model.versions.by_track().items()
        ]
    for workload, config, key, what in served:
        # One object per kind named after the workload; its Service must also be a DNS-1035 label.
        for kind in ("Deployment", "PodDisruptionBudget"):
            yield DerivedObject(kind, ns, workload, key, f"the {kind} {what}", (DNS_SUBDOMAIN, DNS_LABEL))
        yield DerivedObject(
            "Service",
            ns,
            workload,
            key,
            f"the Service {what}",
            (DNS_1035_LABEL,),
            hint="the model's name is its Service's name: start it with a letter",
        )
        if workload != model.name and config is not model and model.canary_has_own_cache and key[3] == "canary":
            yield DerivedObject(
                "PersistentVolumeClaim",
                ns,
                f"{workload}{CACHE_SUFFIX}",
                key,
                f"the model cache {what}",
                (DNS_SUBDOMAIN,),
            )
        settings = config.ollama
        if config.engine == "ollama" and settings is not None and settings.modelfile is not None:
            yield DerivedObject(
                "ConfigMap",
                ns,
                f"{workload}{ENGINE_CONFIG_SUFFIX}",
                key,
                f"the engine ConfigMap {what}",
                (DNS_SUBDOMAIN,),
            )


def _model_secrets(stack: _StackLike, index: int, model: ModelConfig, token: str) -> Iterator[DerivedObject]:
    name, ns = model.name, model.k8s_namespace
    secret_key: KeyPath = ("models", index, "hfTokenSecret")
    store = stack.secret_store
    of = f"of model '{name}'"
    if store.backend == "kubernetes":
        yield DerivedObject(
            "Secret", ns, f"{name}{SECRETS_SUFFIX}", ("models", index, "name"), f"the Secret {of}", (DNS_SUBDOMAIN,)
        )
        return
    vault = store.key_vault
    yield DerivedObject(
        "SecretProviderClass",
        ns,
        f"{name}{SECRETS_SUFFIX}",
        ("models", index, "name"),
        f"the SecretProviderClass {of}",
        (DNS_SUBDOMAIN,),
    )
    yield DerivedObject(
        "Key Vault secret",
        f"vault {vault.name}" if vault is not None else None,
        key_vault_secret_name(name, token),
        secret_key,
        f"the Key Vault secret {of}",
        (KEY_VAULT_SECRET,),
        hint="Key Vault secret names take letters, digits and '-' only: rename the secret",
    )
    yield DerivedObject(
        "federated identity credential",
        f"identity id-slm-{name}",
        f"{ns}-{name}",
        ("models", index, "namespace") if model.namespace else ("models", index, "name"),
        f"the workload identity federation {of} (<namespace>-<service account>)",
        (FEDERATED_CREDENTIAL,),
        hint="shorten the model's name or namespace",
    )


def derived_objects(stack: _StackLike) -> list[DerivedObject]:
    """The objects named from the config: the stack's infrastructure first, then each model's."""
    objects = list(_infrastructure(stack))
    for index, model in enumerate(stack.models):
        objects += _model_objects(stack, index, model)
    return objects


def derived_labels(stack: _StackLike) -> list[DerivedLabel]:
    """Label values the components take from the config (beyond `labels`, which is checked as it is read)."""
    labels: list[DerivedLabel] = []
    if stack.chat_ui.enabled:
        tag = stack.chat_ui.image.tag
        labels.append(
            DerivedLabel("app.kubernetes.io/version", tag, ("chatUi", "image", "tag"), "the chat UI's version")
        )
    for index, model in enumerate(stack.models):
        of = f"model '{model.name}'"
        labels.append(
            DerivedLabel(
                "app.kubernetes.io/instance", model.name, ("models", index, "name"), f"the instance label of {of}"
            )
        )
        for track, version in (model.versions.by_track() if model.versions is not None else {}).items():
            if version.image is not None:
                labels.append(
                    DerivedLabel(
                        "app.kubernetes.io/version",
                        version.image.tag,
                        ("models", index, "versions", track, "image", "tag"),
                        f"the version label of the {track} revision of {of} (its image tag)",
                    )
                )
        if model.image is not None:
            labels.append(
                DerivedLabel(
                    "app.kubernetes.io/version",
                    model.image.tag,
                    ("models", index, "image", "tag"),
                    f"the version label of {of} (its image tag)",
                    hint="pin a release whose tag fits a label value (tags longer than 63 characters, or "
                    "starting with '_' or ending with '.', '-' or '_', do not), or use a shorter alias tag with "
                    "the same digest",
                )
            )
    return labels


def _broken(what: str, name: str, rule: NameRule, problem: str, hint: str) -> str:
    message = f"{what} would be named {show(name)}, which is not {rule.title}: {problem} ({rule.summary})"
    return f"{message}; {hint}" if hint else message


def check_derived_names(stack: _StackLike) -> None:
    """Refuse a derived name the API server would refuse, a reserved namespace, and two objects that are one.

    Raises :class:`KeyPathError` at the key the name comes from; a collision names the other key too.
    """
    objects = derived_objects(stack)
    for obj in objects:
        for rule in obj.rules:
            problem = rule.problem(obj.name)
            if problem is not None:
                raise KeyPathError(obj.key, _broken(obj.what, obj.name, rule, problem, obj.hint))
    for label in derived_labels(stack):
        problem = LABEL_VALUE.problem(label.value)
        if problem is not None:
            message = (
                f"{label.what} would be {label.label}={show(label.value)}, which is not {LABEL_VALUE.title}: "
                f"{problem} ({LABEL_VALUE.summary})"
            )
            raise KeyPathError(label.key, f"{message}; {label.hint}" if label.hint else message)
    for obj in objects:
        if obj.kind == "Namespace" and obj.creates and obj.name in RESERVED_NAMESPACES:
            raise KeyPathError(
                obj.key,
                f"{obj.what} would be {show(obj.name)}, a namespace Kubernetes itself owns: the stack labels the "
                "namespaces it creates for Pod Security Admission and deletes them with the stack; choose another",
            )
    seen: dict[tuple[str, str | None, str], DerivedObject] = {}
    for obj in objects:
        other = seen.setdefault((obj.kind, obj.namespace, obj.name), obj)
        if other is obj or (obj.shared and other.shared) or obj.key == other.key:
            continue
        where = f" in namespace '{obj.namespace}'" if obj.kind != "Namespace" and obj.namespace else ""
        raise KeyPathError(
            obj.key,
            f"{obj.what} would be {obj.kind} {show(obj.name)}{where}, which is already {other.what} "
            f"({format_key_path(other.key)}): the two would be one object; rename one of them",
        )
