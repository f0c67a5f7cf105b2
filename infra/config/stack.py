"""Everything a stack can say, as one typed model tree (stack config namespace ``slm-deploy``).

Each top-level field is one key of the stack file (``slm-deploy:models``, ``slm-deploy:environment`` …).
Defaults are the secure choice; every field carries its documentation, from which
``docs/configuration.md`` is generated.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from infra.catalog.architecture import ModelArchitecture
from infra.config.base import ConfigModel, KeyPathError
from infra.config.cluster import AksCluster, ClusterConfig, ExistingCluster, check_cluster
from infra.config.entry_point import EntryPointConfig, check_entry_point
from infra.config.names import DnsLabel, Quantity
from infra.config.quantity import parse_quantity
from infra.config.secrets import Secret
from infra.hardening import Hardening
from infra.monitoring.config import AlertThresholds

Environment = Literal["dev", "staging", "prod"]
EngineName = Literal["vllm", "ollama", "onnx"]
#: Kubernetes minor versions whose schemas kubernetes-validate ships.
#: The resource that asks for the entry point's load balancer (the EnvoyProxy of the EntryPoint component).
PUBLIC_PROXY_RESOURCE = "entry-point-proxy-config"
SUPPORTED_KUBERNETES = tuple(f"1.{minor}" for minor in range(25, 38))
_HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ResourceList(ConfigModel):
    """CPU and memory for one side (requests or limits) of a container."""

    cpu: Quantity = Field(description="CPU cores, as a Kubernetes quantity (`500m`, `2`).")
    memory: Quantity = Field(description="Memory, as a Kubernetes quantity (`512Mi`, `16Gi`).")


class Resources(ConfigModel):
    """Requests and limits of the model server container; both are always set."""

    requests: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="2", memory="8Gi"),
        description="What the scheduler reserves for the server.",
    )
    limits: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="4", memory="16Gi"),
        description="The ceiling; memory beyond it kills the container.",
    )

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        for key in ("cpu", "memory"):
            request, limit = getattr(self.requests, key), getattr(self.limits, key)
            if parse_quantity(limit) < parse_quantity(request):
                raise ValueError(f"limits.{key} {limit} is below requests.{key} {request}")
        return self


class Gpu(ConfigModel):
    """GPUs for one replica, and the GPU node pool it runs on."""

    count: int = Field(0, ge=0, description="GPUs per replica (0 for CPU serving).")
    pool: DnsLabel = Field("gpu", description="Name of the GPU node pool the server is scheduled on.")
    vm_size: str | None = Field(
        None,
        description="Azure VM size of that pool's nodes (e.g. Standard_NC4as_T4_v3); sizing checks the model fits it.",
    )
    resource: Literal["nvidia.com/gpu"] = Field("nvidia.com/gpu", description="Extended resource name.")


class ImageRef(ConfigModel):
    """A container image. The engine pins a default; a stack may pin another version or a digest."""

    repository: str = Field(description="Image repository, e.g. `vllm/vllm-openai`.")
    tag: str = Field(description="A version tag; `latest` is refused.")
    digest: str | None = Field(None, description="`sha256:…` digest; when set, the image is pulled by it.")

    @field_validator("tag")
    @classmethod
    def _not_latest(cls, value: str) -> str:
        if value == "latest" or not value:
            raise ValueError("'latest' is not a version: pin a release tag")
        return value

    @field_validator("digest")
    @classmethod
    def _digest_format(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("sha256:") and len(value) == 71):
            raise ValueError(f"'{value}' is not a sha256 digest (sha256: followed by 64 hex digits)")
        return value

    @property
    def reference(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


class CacheVolume(ConfigModel):
    """The PersistentVolumeClaim that holds downloaded weights, so restarts do not fetch them again."""

    size: Quantity = Field("50Gi", description="Capacity of the model cache.")
    storage_class: str | None = Field(None, description="StorageClass name; the cluster default when unset.")
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"] = Field(
        "ReadWriteOnce", description="ReadWriteMany lets replicas on several nodes share one cache."
    )


class VllmSettings(ConfigModel):
    """vLLM server flags. Unset flags keep vLLM's own defaults."""

    max_model_len: int | None = Field(None, ge=128, description="`--max-model-len`: context length served.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="`--gpu-memory-utilization`: share of each GPU's memory vLLM may use."
    )
    tensor_parallel_size: int | None = Field(
        None, ge=1, description="`--tensor-parallel-size`; defaults to the GPU count."
    )
    max_num_seqs: int | None = Field(None, ge=1, description="`--max-num-seqs`: concurrent sequences.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field("auto", description="`--dtype`.")
    quantization: Literal["awq", "gptq", "fp8", "bitsandbytes", "compressed-tensors"] | None = Field(
        None, description="`--quantization`, for pre-quantized checkpoints."
    )
    extra_args: list[str] = Field(default_factory=list, description="More vLLM flags, passed as given.")


class OnnxPrepare(ConfigModel):
    """A Job that downloads a Hugging Face model and converts it to the ONNX Runtime GenAI format, once."""

    source: str = Field(
        min_length=1,
        description="Hugging Face repository to convert; a repository already in ORT GenAI format (e.g. one "
        "prepared for Foundry Local) is used as it is.",
    )
    precision: Literal["int4", "fp16", "fp32"] = Field("int4", description="Precision of the converted model.")
    image: ImageRef = Field(
        description="The preparation image (servers/onnx/Dockerfile.j2 rendered with build_tools: true)."
    )


class OnnxSettings(ConfigModel):
    """ONNX Runtime GenAI server settings (servers/onnx)."""

    device: Literal["cpu", "cuda"] = Field("cpu", description="Execution provider; cpu is CPU-only.")
    max_concurrency: int = Field(1, ge=1, description="Generations at once (`SLM_ONNX_MAX_CONCURRENCY`).")
    max_queue: int = Field(16, ge=0, description="Requests waiting beyond that; more get 429 (`SLM_ONNX_MAX_QUEUE`).")
    context_length: int | None = Field(None, ge=128, description="Context served; the model's own when unset.")
    prepare: OnnxPrepare | None = Field(
        None, description="Convert the model in a Job before the server starts; unset: the model is already there."
    )


#: Modelfile PARAMETER names Ollama documents.
OLLAMA_PARAMETERS = (
    "mirostat",
    "mirostat_eta",
    "mirostat_tau",
    "num_ctx",
    "num_predict",
    "repeat_last_n",
    "repeat_penalty",
    "seed",
    "stop",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
)


class OllamaModelfile(ConfigModel):
    """A custom model built at start-up with `ollama create` from a Modelfile (templates/ollama/Modelfile.j2)."""

    system: str | None = Field(None, description="System prompt (Modelfile `SYSTEM`).")
    parameters: dict[str, float | int | str] = Field(
        default_factory=dict, description="Modelfile `PARAMETER`s, e.g. temperature, num_ctx, top_p, stop."
    )

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, value: dict[str, float | int | str]) -> dict[str, float | int | str]:
        for key in value:
            if key not in OLLAMA_PARAMETERS:
                raise ValueError(
                    f"unknown Modelfile parameter '{key}' (expected one of {', '.join(OLLAMA_PARAMETERS)})"
                )
        return value


class OllamaSettings(ConfigModel):
    """Ollama server settings."""

    keep_alive: str = Field(
        "24h", pattern=r"^-?\d+(ms|s|m|h)?$", description="`OLLAMA_KEEP_ALIVE`: how long a model stays loaded."
    )
    num_parallel: int = Field(4, ge=1, description="`OLLAMA_NUM_PARALLEL`: requests served at once per model.")
    max_queue: int = Field(64, ge=1, description="`OLLAMA_MAX_QUEUE`: requests queued before Ollama answers 503.")
    modelfile: OllamaModelfile | None = Field(
        None, description="Build a custom model (system prompt, parameters) on top of `modelId`."
    )


class Autoscaling(ConfigModel):
    """Scale a model on its queue of waiting requests (KEDA), not on GPU utilisation."""

    enabled: bool = Field(False, description="Let KEDA (or an HPA) own the replica count.")
    backend: Literal["keda", "hpa"] = Field(
        "keda", description="`keda`: a ScaledObject on Prometheus; `hpa`: an HPA on the Prometheus adapter's metric."
    )
    min_replicas: int = Field(1, ge=0, description="Lower bound; 0 (scale to zero) only outside prod.")
    max_replicas: int = Field(4, ge=1, description="Upper bound; must fit the GPU pool's node limit.")
    target_queue_per_replica: float = Field(
        5, gt=0, description="Waiting requests per replica (`vllm:num_requests_waiting`) that trigger a scale-up."
    )
    scale_up_stabilization_seconds: int = Field(
        0, ge=0, description="React at once to a growing queue; new replicas take minutes to load anyway."
    )
    scale_down_stabilization_seconds: int = Field(
        900, ge=0, description="Wait this long before removing replicas: reloading a model is expensive."
    )
    polling_interval_seconds: int = Field(15, ge=5, description="How often KEDA queries Prometheus.")
    hpa_metric: str = Field(
        "vllm_num_requests_waiting",
        description="Per-pod metric name as the Prometheus adapter exposes it (backend `hpa`).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas {self.min_replicas} is above maxReplicas {self.max_replicas}")
        if self.backend == "hpa" and self.min_replicas == 0:
            raise ValueError("an HPA cannot scale to zero: use backend keda, or minReplicas >= 1")
        return self


class ModelSizing(ConfigModel):
    """Derive the vLLM flags (and check the GPU) from the model's architecture; see docs/sizing.md."""

    precision: Literal["bf16", "fp16", "fp8", "int8", "int4"] = Field(
        "bf16", description="Bytes per weight: bf16/fp16 2, fp8/int8 1, int4 0.5 (pre-quantized checkpoints)."
    )
    context: int | None = Field(
        None, ge=128, description="Tokens per sequence (`--max-model-len`); the native context capped at 8192."
    )
    concurrency: int = Field(8, ge=1, description="Sequences held at full context at once (`--max-num-seqs`).")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of each GPU vLLM may use (`--gpu-memory-utilization`)."
    )


class ModelConfig(ConfigModel):
    """One model server: the model, its engine, its size and where it runs."""

    name: DnsLabel = Field(description="Short name; names the namespace and every object of the model.")
    engine: EngineName = Field(description="Serving engine.")
    catalog: str | None = Field(
        None, description="Key of a model in the catalogue (infra/catalog/models.yaml): architecture and ids."
    )
    architecture: ModelArchitecture | None = Field(
        None, description="The model's numbers, for a model not in the catalogue (instead of `catalog`)."
    )
    model_id: str = Field(
        min_length=1,
        description="What the engine loads: a Hugging Face id for vLLM, a tag for Ollama; from the catalogue "
        "when `catalog` is set and this is not.",
    )
    sizing: ModelSizing | None = Field(
        None, description="Size the server from the architecture: vLLM flags, tensor parallelism, GPU fit."
    )
    served_model_name: str | None = Field(
        None, description="Name clients ask for in the OpenAI API; the model name when unset."
    )
    namespace: DnsLabel | None = Field(None, description="Namespace of the model; `slm-<name>` when unset.")
    replicas: int = Field(1, ge=1, description="Server replicas (prod stacks run at least 2).")
    resources: Resources = Field(default_factory=Resources, description="CPU and memory of the server.")
    gpu: Gpu = Field(default_factory=Gpu, description="GPUs per replica and the pool they come from.")
    image: ImageRef | None = Field(None, description="Overrides the engine's pinned image.")
    cache: CacheVolume = Field(default_factory=CacheVolume, description="The model cache volume.")
    hf_token_secret: str | None = Field(
        None, description="Key under `secrets` holding a Hugging Face token, for gated models."
    )
    startup_timeout_seconds: int = Field(
        1800,
        ge=60,
        description="How long the server may take to download and load the model before it is restarted.",
    )
    vllm: VllmSettings | None = Field(None, description="vLLM flags (engine vllm only).")
    ollama: OllamaSettings | None = Field(None, description="Ollama settings (engine ollama only).")
    onnx: OnnxSettings | None = Field(None, description="ONNX Runtime settings (engine onnx only).")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Queue-based autoscaling.")
    hardening: Hardening = Field(
        default_factory=Hardening, description="Security defaults; change one only to opt out of it."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels on the model's objects.")

    @model_validator(mode="before")
    @classmethod
    def _model_id_from_catalogue(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("catalog") and not data.get("modelId") and not data.get("model_id"):
            from infra.catalog import UnknownModelError, get_model

            try:
                entry = get_model(str(data["catalog"]))
            except UnknownModelError as error:
                raise ValueError(str(error)) from None
            model_id = getattr(entry.engines, str(data.get("engine")), None)
            if model_id:
                return {**data, "modelId": model_id}
        return data

    @model_validator(mode="after")
    def _fits_its_gpu(self) -> ModelConfig:
        if self.catalog is not None or self.architecture is not None:
            from infra.catalog import UnknownModelError, resolve_architecture

            try:
                resolve_architecture(self.catalog, self.architecture)
            except (UnknownModelError, ValueError) as error:
                raise ValueError(str(error).strip("'\"")) from None
        if self.sizing is not None and self.engine != "vllm":
            raise ValueError(f"sizing derives vLLM flags, but the engine is '{self.engine}'")
        # Whether the model fits its GPU is checked by the stack, which knows the VM size (its own or its pool's).
        return self

    @property
    def max_replicas(self) -> int:
        return self.autoscaling.max_replicas if self.autoscaling.enabled else self.replicas

    @property
    def k8s_namespace(self) -> str:
        return self.namespace or f"slm-{self.name}"

    @property
    def api_model_name(self) -> str:
        return self.served_model_name or self.name

    @model_validator(mode="after")
    def _engine_fits(self) -> ModelConfig:
        for engine in ("vllm", "ollama", "onnx"):
            if engine != self.engine and getattr(self, engine) is not None:
                raise ValueError(f"'{engine}' settings given, but the engine is '{self.engine}'")
        if self.autoscaling.enabled and self.engine == "ollama":
            raise ValueError(
                "autoscaling needs a queue metric, and engine 'ollama' exports none (ollama#3144): "
                "scale it with replicas, or serve the model with vllm or onnx"
            )
        if self.engine == "vllm" and self.gpu.count == 0:
            raise ValueError("engine 'vllm' serves on GPUs: set gpu.count to 1 or more")
        if self.engine == "onnx" and self.gpu.count > 0 and (self.onnx or OnnxSettings()).device == "cpu":
            raise ValueError(
                f"gpu.count is {self.gpu.count}, but engine 'onnx' on device 'cpu' is CPU-only "
                "(set onnx.device: cuda, or gpu.count: 0)"
            )
        if self.max_replicas > 1 and self.cache.access_mode != "ReadWriteMany":
            raise ValueError(
                f"cache.accessMode {self.cache.access_mode} cannot be shared by {self.max_replicas} replicas on "
                "different nodes: use ReadWriteMany (e.g. storageClass azurefile-csi-premium on AKS)"
            )
        if self.engine == "onnx" and self.image is None:
            raise ValueError(
                "engine 'onnx' runs the server image built from servers/onnx/Dockerfile.j2: set image "
                "(repository, tag) to where you pushed it"
            )
        settings = self.vllm or VllmSettings()
        if settings.tensor_parallel_size and settings.tensor_parallel_size > self.gpu.count:
            raise ValueError(
                f"vllm.tensorParallelSize {settings.tensor_parallel_size} needs as many GPUs, "
                f"but gpu.count is {self.gpu.count}"
            )
        return self


def size_for(model: ModelConfig, vm_size: str | None = None) -> Any:
    """The sizing result of a model with ``sizing`` on ``vm_size`` (default: the model's own ``gpu.vmSize``).

    Cached: validation and the engine both ask.
    """
    from infra.catalog import resolve_architecture

    assert model.sizing is not None
    sizing = model.sizing
    return _sized(
        resolve_architecture(model.catalog, model.architecture),
        sizing.precision,
        sizing.context,
        sizing.concurrency,
        sizing.gpu_memory_utilization,
        vm_size or model.gpu.vm_size,
        model.name,
    )


@functools.cache
def _sized(
    arch: Any, precision: str, context: int | None, concurrency: int, utilization: float, vm_size: str | None, name: str
) -> Any:
    from infra.sizing import ModelDoesNotFitError, SizingInputError, size_model

    try:
        return size_model(arch, precision, context, concurrency, utilization, vm_size, model_name=name)  # type: ignore[arg-type]
    except ModelDoesNotFitError as error:
        raise ValueError(str(error)) from None
    except (SizingInputError, LookupError) as error:
        raise ValueError(str(error).strip("'\"")) from None


class Waiver(ConfigModel):
    """An accepted exception to one policy for one resource, owned by someone, until a date."""

    policy: str = Field(min_length=1, description="Policy name (`no-privileged-containers`) or id.")
    resource: str = Field(min_length=1, description="Logical name (or URN) of the waived resource.")
    reason: str = Field(min_length=1, description="Why the exception is acceptable (shown in every report).")
    owner: str = Field(min_length=1, description="Who answers for it (a person or team).")
    expires: datetime.date = Field(description="Date after which the waiver no longer applies.")

    @field_validator("reason", "owner")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class NetworkConfig(ConfigModel):
    """Who may talk to the model servers, and where they may connect."""

    ingress_from_namespaces: list[DnsLabel] = Field(
        default_factory=list, description="Namespaces whose pods may call the model port."
    )
    model_download: Literal["allow", "deny"] = Field(
        "deny", description="Allow egress to `downloadCidrs` (HTTPS) so servers fetch weights at start-up."
    )
    download_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs of the model hub (or its proxy), for `modelDownload: allow` with plain NetworkPolicy.",
    )
    policy_engine: Literal["kubernetes", "cilium"] = Field(
        "kubernetes",
        description="`cilium` adds a CiliumNetworkPolicy that allows downloads by host name (`downloadHosts`).",
    )
    download_hosts: list[str] = Field(
        default_factory=list,
        description="Host names (or `*.` patterns) of the model hub, for `modelDownload: allow` with Cilium.",
    )

    @field_validator("download_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr)
            except ValueError as error:
                raise ValueError(f"'{cidr}' is not a CIDR block") from error
        return value

    @field_validator("download_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            name = host.removeprefix("*.")
            if not name or any(not _HOST_LABEL.match(label) for label in name.split(".")):
                raise ValueError(f"'{host}' is not a host name (or a '*.' pattern)")
        return value

    @model_validator(mode="after")
    def _download_needs_targets(self) -> NetworkConfig:
        if self.model_download == "allow":
            if self.policy_engine == "kubernetes" and not self.download_cidrs:
                raise ValueError("modelDownload is 'allow' but downloadCidrs is empty")
            if self.policy_engine == "cilium" and not self.download_hosts:
                raise ValueError("modelDownload is 'allow' with policyEngine 'cilium' but downloadHosts is empty")
        return self


class KeyVaultConfig(ConfigModel):
    """An existing Azure Key Vault (RBAC authorization) that holds the stack's secrets."""

    name: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", description="Vault name.")
    resource_group: str = Field(min_length=1, description="Resource group of the vault.")
    location: str = Field(min_length=1, description="Azure region for the workload identities.")


class SecretStoreConfig(ConfigModel):
    """Where secret values live and how pods receive them (never as literal environment values)."""

    backend: Literal["kubernetes", "azure-keyvault"] = Field(
        "kubernetes",
        description="`kubernetes`: a Secret made from the Pulumi secret; `azure-keyvault`: Key Vault, mounted "
        "through the Secrets Store CSI driver with workload identity.",
    )
    key_vault: KeyVaultConfig | None = Field(None, description="The vault, for the azure-keyvault backend.")
    oidc_issuer_url: str | None = Field(
        None,
        pattern=r"^https://",
        description="The cluster's OIDC issuer, for workload identity federation (azure-keyvault backend); "
        "taken from the AKS cluster in `aks` mode.",
    )

    @model_validator(mode="after")
    def _backend_settings(self) -> SecretStoreConfig:
        if self.backend == "azure-keyvault":
            if self.key_vault is None:
                raise ValueError("backend 'azure-keyvault' needs keyVault (name, resourceGroup, location)")
        elif self.key_vault is not None or self.oidc_issuer_url is not None:
            raise ValueError("keyVault and oidcIssuerUrl are for backend 'azure-keyvault' only")
        return self


class AlertmanagerReceiver(ConfigModel):
    """Where alerts go. The endpoint URL is a secret (it embeds a token), referenced by name."""

    name: DnsLabel = Field(description="Receiver name.")
    type: Literal["slack", "msteams", "webhook"] = Field(description="Kind of receiver.")
    url_secret: str = Field(description="Key under `secrets` holding the webhook URL.")
    severity: Literal["critical", "warning", "all"] = Field("all", description="Which alerts it receives.")


class MonitoringConfig(ConfigModel):
    """Prometheus, Grafana and Alertmanager for the model servers."""

    mode: Literal["kube-prometheus-stack", "existing", "none"] = Field(
        "kube-prometheus-stack",
        description="Install kube-prometheus-stack; or `existing`: only scrape, rule and dashboard objects for a "
        "Prometheus you run (e.g. Azure Managed Prometheus); or `none`.",
    )
    namespace: DnsLabel = Field("monitoring", description="Namespace of Prometheus (and of the chart).")
    prometheus_url: str = Field(
        "",
        description="Prometheus query URL for KEDA; the chart's service when empty and mode is kube-prometheus-stack.",
    )
    pod_security: Literal["restricted", "baseline"] = Field(
        "restricted",
        description="Pod Security level enforced on the monitoring namespace (audit and warn stay restricted); "
        "`baseline` is an opt-out that the policy pack reports.",
    )
    retention: str = Field("15d", pattern=r"^\d+[smhdwy]$", description="Prometheus retention.")
    storage_size: Quantity = Field("50Gi", description="Prometheus volume size.")
    grafana: bool = Field(True, description="Install Grafana with the dashboard sidecar.")
    receivers: list[AlertmanagerReceiver] = Field(
        default_factory=list, description="Alertmanager receivers; none means alerts are only visible in the UI."
    )
    values: dict[str, object] = Field(
        default_factory=dict, description="Extra kube-prometheus-stack values, merged over ours."
    )
    alerts: AlertThresholds = Field(
        default_factory=AlertThresholds, description="SLO thresholds of the alert rules (docs/runbooks.md)."
    )


class AutoscalerInstall(ConfigModel):
    """KEDA itself, when the stack installs it."""

    install: bool = Field(False, description="Install KEDA (pinned Helm release) for the ScaledObjects.")
    namespace: DnsLabel = Field("keda", description="KEDA's namespace.")


class StackConfig(ConfigModel):
    """The whole `slm-deploy` namespace of a stack file."""

    environment: Environment = Field(description="dev, staging or prod: selects the policy levels.")
    kubernetes_version: str = Field("1.31", description="Kubernetes minor version the manifests target.")
    cluster: ClusterConfig = Field(
        default_factory=ExistingCluster,
        description="Where to deploy: an existing cluster (`mode: existing`) or an AKS cluster the stack creates "
        "(`mode: aks`).",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels on every object.")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="Network isolation.")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="Metrics, alerts, dashboards.")
    keda: AutoscalerInstall = Field(default_factory=AutoscalerInstall, description="KEDA, for autoscaling.")
    entry_point: EntryPointConfig = Field(
        default_factory=EntryPointConfig, description="The optional HTTPS entry point (Gateway API + Envoy Gateway)."
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
    waivers: list[Waiver] = Field(default_factory=list, description="Accepted policy exceptions.")

    def gpu_vm_size(self, model: ModelConfig) -> str | None:
        """The VM size a GPU model runs on: its own `gpu.vmSize`, or its AKS pool's."""
        if model.gpu.vm_size is not None or not isinstance(self.cluster, AksCluster):
            return model.gpu.vm_size
        pool = self.cluster.pool(model.gpu.pool)
        return pool.vm_size if pool is not None else None

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
        namespaces: dict[str, int] = {}
        for index, model in enumerate(self.models):
            if model.k8s_namespace in namespaces:
                raise KeyPathError(
                    ("models", index, "namespace"),
                    f"namespace '{model.k8s_namespace}' is already used by models[{namespaces[model.k8s_namespace]}]",
                )
            namespaces[model.k8s_namespace] = index
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
        for index, model in enumerate(self.models):
            if model.sizing is None:
                continue
            vm_size = self.gpu_vm_size(model)
            from_pool = model.gpu.vm_size is None and vm_size is not None
            where = ("models", index, "gpu", "pool" if from_pool else "vmSize" if vm_size else "sizing")
            prefix = f"pool '{model.gpu.pool}': " if from_pool else ""
            try:
                result = size_for(model, vm_size)
            except ValueError as error:
                raise KeyPathError(where, f"{prefix}{error}") from None
            if result.choice.tensor_parallel_size > model.gpu.count:
                raise KeyPathError(
                    ("models", index, "gpu", "count"),
                    f"sized for tensor parallelism {result.choice.tensor_parallel_size} on {result.choice.vm_size}, "
                    f"but gpu.count is {model.gpu.count}",
                )
        return self

    @model_validator(mode="after")
    def _entry_point(self) -> StackConfig:
        check_entry_point(self.entry_point, self)
        entry = self.entry_point
        if entry.enabled and entry.exposure == "public" and self.environment == "prod":
            waived = any(
                w.policy in ("no-public-load-balancer", "SLM-NET-002") and w.resource == PUBLIC_PROXY_RESOURCE
                for w in self.waivers
            )
            if not waived:
                raise KeyPathError(
                    ("entryPoint", "exposure"),
                    "a public load balancer in prod needs a waiver: add to waivers {policy: no-public-load-balancer, "
                    f"resource: {PUBLIC_PROXY_RESOURCE}, reason, owner, expires}} (or use exposure 'internal')",
                )
        return self

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
            if scaling.enabled and self.monitoring.mode == "none":
                raise KeyPathError(
                    ("models", index, "autoscaling", "enabled"),
                    "autoscaling reads Prometheus, but monitoring.mode is none",
                )
        for index, receiver in enumerate(self.monitoring.receivers):
            if receiver.url_secret not in self.secrets:
                raise KeyPathError(
                    ("monitoring", "receivers", index, "urlSecret"),
                    f"names secret '{receiver.url_secret}', which is not under secrets",
                )
        return self

    @model_validator(mode="after")
    def _secret_references(self) -> StackConfig:
        for index, model in enumerate(self.models):
            if model.hf_token_secret and model.hf_token_secret not in self.secrets:
                raise KeyPathError(
                    ("models", index, "hfTokenSecret"),
                    f"names secret '{model.hf_token_secret}', which is not under secrets "
                    f"(known: {', '.join(sorted(self.secrets)) or 'none'})",
                )
        return self
