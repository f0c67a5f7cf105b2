"""Everything a stack can say (stack config namespace ``slm-deploy``): the sections, and the checks across them.

Each section is a model of its own module under ``infra/config/``; this module keeps :class:`StackConfig`
and the checks that need more than one section. Defaults are the secure choice; every field carries its
documentation, from which ``docs/configuration.md`` is generated.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.config.autoscaling import AutoscalerInstall
from infra.config.base import ConfigModel, KeyPathError
from infra.config.chat_ui import ChatUiConfig, check_chat_ui
from infra.config.clock import today
from infra.config.cluster import AksCluster, ClusterConfig, ExistingCluster, GpuPool, check_cluster
from infra.config.conflicts import check_model_conflicts
from infra.config.entry_point import (
    ENTRY_POINT_RESOURCE,
    PROXY_CONFIG_CHILD,
    EntryPointConfig,
    check_entry_point,
    parse_api_keys,
)
from infra.config.kubernetes_versions import kubernetes_version_warnings
from infra.config.model import ModelConfig
from infra.config.monitoring import MonitoringConfig, duration_seconds
from infra.config.names import Labels
from infra.config.network import NetworkConfig
from infra.config.objects import check_derived_names, checks_api_keys
from infra.config.quotas import check_quotas
from infra.config.secret_store import SecretStoreConfig
from infra.config.secrets import Secret, named_secret
from infra.config.stack_warnings import (
    ConfigWarning,
    model_cache_warnings,
    price_coverage_warnings,
    price_table_warnings,
)
from infra.config.waivers import WaiverConfig
from infra.sizing.served import size_for
from infra.sizing.vm_sizes import GpuVmSize
from policies.lib import waivers as waiver_matcher

Environment = Literal["dev", "staging", "prod"]
#: Kubernetes minor versions whose schemas kubernetes-validate ships.
SUPPORTED_KUBERNETES = tuple(f"1.{minor}" for minor in range(25, 38))
#: The default: a minor inside AKS's support window when this release was made (2026-11-29; standard support
#: until 2027-03-31, infra/catalog/kubernetes_versions.yaml). `validate` warns once a stack's minor leaves it.
DEFAULT_KUBERNETES = "1.35"
#: The resource that asks for the entry point's load balancer (the EnvoyProxy of the EntryPoint component).
PUBLIC_PROXY_RESOURCE = f"{ENTRY_POINT_RESOURCE}-{PROXY_CONFIG_CHILD}"


class StackConfig(ConfigModel):
    """The whole `slm-deploy` namespace of a stack file."""

    environment: Environment = Field(description="dev, staging or prod: selects the policy levels.")
    kubernetes_version: str = Field(
        DEFAULT_KUBERNETES,
        description="Kubernetes minor version the manifests target (schemas of 1.25 to 1.37); `validate` warns "
        "when it is outside AKS's support window (infra/catalog/kubernetes_versions.yaml).",
    )
    cluster: ClusterConfig = Field(
        default_factory=ExistingCluster,
        description="Where to deploy: an existing cluster (`mode: existing`) or an AKS cluster the stack creates "
        "(`mode: aks`).",
    )
    labels: Labels = Field(default_factory=dict, description="Extra labels on every object.")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="Network isolation.")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="Metrics, alerts, dashboards.")
    keda: AutoscalerInstall = Field(default_factory=AutoscalerInstall, description="KEDA, for autoscaling.")
    entry_point: EntryPointConfig = Field(
        default_factory=EntryPointConfig, description="The optional HTTPS entry point (Gateway API + Envoy Gateway)."
    )
    chat_ui: ChatUiConfig = Field(
        default_factory=ChatUiConfig, description="The optional chat page (Open WebUI) behind the entry point."
    )
    secret_store: SecretStoreConfig = Field(
        default_factory=SecretStoreConfig, description="Secret backend (kubernetes or azure-keyvault)."
    )
    secrets: dict[str, Secret] = Field(
        default_factory=dict,
        description="Secret values by name, each set with `pulumi config set --secret --path secrets.<name>`.",
    )
    protect_stateful: bool | None = Field(
        None, description="Protect caches and clusters from deletion; on in staging and prod when unset."
    )
    models: list[ModelConfig] = Field(min_length=1, description="The model servers of the stack.")
    waivers: list[WaiverConfig] = Field(default_factory=list, description="Accepted policy exceptions.")

    def gpu_vm_size(self, model: ModelConfig) -> str | None:
        """The VM size a GPU model runs on: its own `gpu.vmSize`, or its AKS pool's."""
        if model.gpu.vm_size is not None or not isinstance(self.cluster, AksCluster):
            return model.gpu.vm_size
        pool = self.cluster.pool(model.gpu.pool)
        return pool.vm_size if pool is not None else None

    def gpu_pool(self, model: ModelConfig) -> GpuPool | None:
        """The AKS GPU pool a GPU model runs on (``None`` on an existing cluster or for a CPU model)."""
        if not model.gpu.count or not isinstance(self.cluster, AksCluster):
            return None
        return self.cluster.pool(model.gpu.pool)

    def gpu_slice(self, model: ModelConfig) -> GpuVmSize | None:
        """One slice of a shared GPU, when the model's pool shares its GPUs (what sizing checks the model against)."""
        pool = self.gpu_pool(model)
        return pool.replica_shape if pool is not None and pool.shared else None

    def gpu_resource(self, model: ModelConfig) -> str:
        """The extended resource the model's pods request: its pool's (a GPU, a time slice, a MIG slice)."""
        pool = self.gpu_pool(model)
        return pool.gpu_resource if pool is not None else model.gpu.resource

    def warnings(self) -> list[ConfigWarning]:
        """What deploys but deserves a word (a version out of support, a cache nothing fills), on today's date.

        Never an error: ``validate``, ``plan``, ``render`` and ``check`` print them and keep their exit status.
        """
        found = kubernetes_version_warnings(self.kubernetes_version, self.cluster, today())
        found += model_cache_warnings(self.network, self.models)
        found += price_table_warnings(today())
        found += price_coverage_warnings(self)
        return found

    @property
    def gpu_node_label(self) -> str:
        """The node label key GPU model servers select their pool by (``cluster.gpuNodeLabel``, or the AKS pools')."""
        return self.cluster.gpu_node_label

    @property
    def waiver_list(self) -> list[waiver_matcher.Waiver]:
        """The stack's waivers as the one matcher reads them (the same the pack and the checkov skips use)."""
        parsed, _problems = waiver_matcher.parse([waiver.entry() for waiver in self.waivers])
        return parsed

    @property
    def protect(self) -> bool:
        return self.environment != "dev" if self.protect_stateful is None else self.protect_stateful

    @field_validator("kubernetes_version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in SUPPORTED_KUBERNETES:
            raise ValueError(
                f"'{value}' is not a supported Kubernetes version "
                f"({SUPPORTED_KUBERNETES[0]} to {SUPPORTED_KUBERNETES[-1]})"
            )
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> StackConfig:
        first_index: dict[str, int] = {}
        for index, model in enumerate(self.models):
            if model.name in first_index:
                raise KeyPathError(
                    ("models", index, "name"),
                    f"model name '{model.name}' is already used by models[{first_index[model.name]}]",
                )
            first_index[model.name] = index
        return self

    @model_validator(mode="after")
    def _versions(self) -> StackConfig:
        # Before the derived names: they are read from each revision's validated keys.
        from infra.config.versions import check_versions

        check_versions(self)
        return self

    @model_validator(mode="after")
    def _adapter_names(self) -> StackConfig:
        # Clients pick a model or an adapter by its name alone (the OpenAI `model` field): each name means one thing.
        taken = {model.api_model_name: f"the served name of models[{index}]" for index, model in enumerate(self.models)}
        for index, model in enumerate(self.models):
            for position, adapter in enumerate(model.lora.adapters if model.lora else []):
                at = ("models", index, "lora", "adapters", position, "name")
                if adapter.name in taken:
                    raise KeyPathError(at, f"adapter name '{adapter.name}' is already {taken[adapter.name]}")
                taken[adapter.name] = f"the name of models[{index}].lora.adapters[{position}]"
        return self

    @model_validator(mode="after")
    def _derived_names(self) -> StackConfig:
        # Every object name the program derives, as the API server will check it; namespaces and collisions.
        check_derived_names(self)
        return self

    @model_validator(mode="after")
    def _cluster(self) -> StackConfig:
        check_cluster(
            self.cluster, environment=self.environment, kubernetes_version=self.kubernetes_version, models=self.models
        )
        if isinstance(self.cluster, AksCluster):
            for index, model in enumerate(self.models):
                pool = self.cluster.pool(model.gpu.pool) if model.gpu.count else None
                if pool is None:
                    continue
                if model.gpu.vm_size is not None and model.gpu.vm_size != pool.vm_size:
                    raise KeyPathError(
                        ("models", index, "gpu", "vmSize"),
                        f"says {model.gpu.vm_size}, but pool '{pool.name}' runs {pool.vm_size}: leave vmSize unset "
                        "in aks mode (the pool decides)",
                    )
        store = self.secret_store
        if (
            store.backend == "azure-keyvault"
            and store.oidc_issuer_url is None
            and not isinstance(self.cluster, AksCluster)
        ):
            raise KeyPathError(
                ("secretStore", "oidcIssuerUrl"),
                "backend 'azure-keyvault' on an existing cluster needs the cluster's OIDC issuer URL",
            )
        return self

    @model_validator(mode="after")
    def _models_fit_their_gpus(self) -> StackConfig:
        from infra.catalog import UnknownModelError, resolve_architecture

        for index, model in enumerate(self.models):
            sizing = model.sizing
            if sizing is None:
                continue
            at: tuple[str | int, ...] = ("models", index)
            # The inputs first, each at its own key: sizing's own errors would all land on the VM size.
            if model.catalog is None and model.architecture is None:
                raise KeyPathError(
                    (*at, "sizing"),
                    "sizes from the model's architecture: set catalog (a catalogue key) or architecture",
                )
            try:
                arch = resolve_architecture(model.catalog, model.architecture)
            except (UnknownModelError, ValueError) as error:
                raise KeyPathError((*at, "catalog"), str(error).strip("'\"")) from None
            if sizing.context is not None and sizing.context > arch.context_length:
                raise KeyPathError(
                    (*at, "sizing", "context"),
                    f"{sizing.context} exceeds the model's native context length {arch.context_length}",
                )
            vm_size = self.gpu_vm_size(model)
            from_pool = model.gpu.vm_size is None and vm_size is not None
            # What is left is the fit: on the VM size the stack fixes (its own or its pool's; one slice of a shared
            # pool's GPU), or on any.
            where = (*at, "gpu", "pool") if from_pool else (*at, "gpu", "vmSize") if vm_size else (*at, "sizing")
            prefix = f"pool '{model.gpu.pool}': " if from_pool else ""
            piece = self.gpu_slice(model)
            if piece is not None:
                prefix = f"pool '{model.gpu.pool}' (one slice: {piece.gpu}): "
            try:
                result = size_for(model, piece or vm_size)
            except ValueError as error:
                raise KeyPathError(where, f"{prefix}{error}") from None
            choice = result.choice
            if choice is not None and choice.tensor_parallel_size > model.gpu.count:
                raise KeyPathError(
                    (*at, "gpu", "count"),
                    f"sized for tensor parallelism {choice.tensor_parallel_size} on {choice.vm_size}, "
                    f"but gpu.count is {model.gpu.count}",
                )
        return self

    @model_validator(mode="after")
    def _entry_point(self) -> StackConfig:
        check_entry_point(self.entry_point, self)
        entry = self.entry_point
        if entry.enabled and entry.quotas is not None:
            namespaces = {model.k8s_namespace: f"model '{model.name}'" for model in self.models}
            namespaces |= {self.monitoring.namespace: "monitoring", self.chat_ui.namespace: "chat page"}
            namespaces |= {entry.namespace: "entry point", entry.controller_namespace: "gateway controller"}
            keys = self.secrets.get(entry.api_keys) if entry.api_keys is not None else None
            # check_entry_point (above) has parsed them: a malformed key set never reaches this line.
            known = keys.plaintext if keys is not None else None
            key_clients = set(parse_api_keys(known)) if known is not None else None
            models = [(model.name, model.api_model_name) for model in self.models]
            check_quotas(entry, self, models, namespaces, key_clients)
            for index, model in enumerate(self.models):
                if model.scales_to_zero and entry.exposes(model.name):
                    # The AI Gateway's route has no Host rewrite to the HTTP add-on's interceptor (docs/quotas.md).
                    raise KeyPathError(
                        ("models", index, "autoscaling", "scaleToZero", "enabled"),
                        "a model behind entryPoint.quotas cannot scale to zero yet: its requests go through Envoy AI "
                        "Gateway, not the HTTP add-on's interceptor; keep minReplicas >= 1 or remove quotas",
                    )
        if entry.enabled and entry.exposure == "public" and self.environment == "prod":
            from policies.lib.finding import Finding
            from policies.rules.no_public_load_balancer import API, CHAT_PAGE
            from policies.rules.no_public_load_balancer import RULE as PUBLIC_LOAD_BALANCER

            rule = PUBLIC_LOAD_BALANCER
            active = waiver_matcher.active_for(
                self.waiver_list, rule.name, rule.id, None, PUBLIC_PROXY_RESOURCE, today()
            )
            for subject in [API, CHAT_PAGE] if self.chat_ui.enabled else [API]:
                if not any(w.covers_finding(Finding("", subject=subject)) for w in active):
                    raise KeyPathError(
                        ("entryPoint", "exposure"),
                        f"a public load balancer in prod needs a waiver in force for each thing it serves: add to "
                        f"waivers {{policy: {rule.name}, resource: {PUBLIC_PROXY_RESOURCE}, subjects: [{subject}], "
                        "reason, owner, expires}} (or use exposure 'internal')",
                    )
        return self

    @model_validator(mode="after")
    def _inference_pools(self) -> StackConfig:
        from infra.config.inference_pool import check_inference_pools

        check_inference_pools(self)
        return self

    @model_validator(mode="after")
    def _ingress_peers(self) -> StackConfig:
        entry = self.entry_point
        own = {self.monitoring.namespace: "monitoring", self.chat_ui.namespace: "chat page"}
        if entry.enabled:
            own |= {entry.namespace: "gateway", entry.controller_namespace: "gateway controller"}
            if entry.quotas is not None:
                own[entry.quotas.redis.namespace] = "rate-limit store"
        self.network.check_ingress_peers(own)
        return self

    @model_validator(mode="after")
    def _direct_access(self) -> StackConfig:
        for index, model in enumerate(self.models):
            if model.direct_access.unauthenticated_reason is None:
                continue
            at = ("models", index, "directAccess", "unauthenticatedReason")
            if not self.network.ingress_from_namespaces:
                raise KeyPathError(
                    at,
                    "nothing to explain: no namespace other than the gateway's reaches the model "
                    "(network.ingressFromNamespaces is empty); remove it",
                )
            if checks_api_keys(self.entry_point, model):
                raise KeyPathError(
                    at,
                    f"the {model.engine} server of model '{model.name}' checks API keys already "
                    "(entryPoint.modelsCheckKeys); remove it",
                )
        return self

    @model_validator(mode="after")
    def _chat_ui(self) -> StackConfig:
        check_chat_ui(self.chat_ui, self)
        return self

    def _check_scale_to_zero(self, index: int, model: ModelConfig) -> None:
        """What the interceptor in front of a scaled-to-zero model needs from the rest of the stack."""
        key = ("models", index, "autoscaling", "scaleToZero")
        if model.inference_pool.enabled:
            raise KeyPathError(
                (*key, "enabled"),
                "a model that scales to zero is reached through the KEDA HTTP interceptor, but inferencePool.enabled "
                "routes to its pods directly (nothing would hold the first request): disable one of them",
            )
        if model.versions:
            raise KeyPathError(
                (*key, "enabled"),
                "a model that scales to zero is reached through the KEDA HTTP interceptor, which forwards to one "
                "Service, but versions split its requests between revisions: disable one of them",
            )
        entry = self.entry_point
        if entry.enabled and entry.exposes(model.name):
            gateway = duration_seconds(entry.request_timeout)
            if model.wake_timeout_seconds >= gateway:
                raise KeyPathError(
                    (*key, "wakeTimeoutSeconds"),
                    f"the interceptor would hold the first request up to {model.wake_timeout_seconds}s (default: "
                    f"startupTimeoutSeconds), but the gateway gives up after entryPoint.requestTimeout "
                    f"{entry.request_timeout}: lower the wake timeout or raise requestTimeout",
                )

    @model_validator(mode="after")
    def _autoscaling(self) -> StackConfig:
        for index, model in enumerate(self.models):
            scaling = model.autoscaling
            if scaling.enabled and scaling.min_replicas == 0 and self.environment == "prod":
                raise KeyPathError(
                    ("models", index, "autoscaling", "minReplicas"),
                    "scale to zero is refused in prod: the first request would wait minutes for a model load",
                )
            if scaling.enabled and self.environment == "prod" and scaling.min_replicas < 2:
                raise KeyPathError(
                    ("models", index, "autoscaling", "minReplicas"), "prod keeps at least 2 replicas (got 1)"
                )
            if model.scales_to_zero:
                self._check_scale_to_zero(index, model)
            if scaling.enabled and self.monitoring.mode == "none":
                raise KeyPathError(
                    ("models", index, "autoscaling", "enabled"),
                    "autoscaling reads Prometheus, but monitoring.mode is none",
                )
        receiver_names: dict[str, int] = {}
        for index, receiver in enumerate(self.monitoring.receivers):
            # Each name keys the receivers' Secret and names an Alertmanager receiver: one each.
            first = receiver_names.setdefault(receiver.name, index)
            if first != index:
                raise KeyPathError(
                    ("monitoring", "receivers", index, "name"),
                    f"receiver name '{receiver.name}' is already used by monitoring.receivers[{first}]",
                )
            named_secret(self.secrets, receiver.url_secret, ("monitoring", "receivers", index, "urlSecret"))
        return self

    @model_validator(mode="after")
    def _gated_models_have_a_token(self) -> StackConfig:
        for index, model in enumerate(self.models):
            repository = model.gated_download(self.network.model_download)
            if repository and not model.hf_token_secret:
                raise KeyPathError(
                    ("models", index, "hfTokenSecret"),
                    f"model '{model.name}' downloads {repository}, a gated Hugging Face repository: set hfTokenSecret "
                    "to the secret holding a token of an account that accepted its licence (or pre-fill the cache "
                    "and deny downloads)",
                )
        return self

    @model_validator(mode="after")
    def _secret_references(self) -> StackConfig:
        for index, model in enumerate(self.models):
            if model.hf_token_secret:
                named_secret(self.secrets, model.hf_token_secret, ("models", index, "hfTokenSecret"))
        return self

    @model_validator(mode="after")
    def _no_conflicts(self) -> StackConfig:
        # Last: a more specific error about the same keys (scale to zero in prod …) says more.
        check_model_conflicts(self.models)
        return self
