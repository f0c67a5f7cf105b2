"""One model server (an entry of `models:`): the model, its engine, its size and where it runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from infra.catalog.architecture import ModelArchitecture
from infra.config.autoscaling import Autoscaling, VerticalAutoscaling
from infra.config.base import ConfigModel
from infra.config.engines import LlamaCppSettings, OllamaSettings, OnnxSettings, VllmSettings
from infra.config.images import ImageRef
from infra.config.inference_pool import InferencePoolSettings
from infra.config.k8s_names import DATA_KEY, OLLAMA_MODEL, SERVED_MODEL_NAME, VLLM_MODEL, NameRule, refuse
from infra.config.lora import LoraSettings
from infra.config.names import ContainerText, DnsLabel, Labels
from infra.config.resources import CacheVolume, Gpu, Resources
from infra.config.throughput import Throughput
from infra.config.versions import ModelVersion, ModelVersions
from infra.config.weights import Weights
from infra.hardening import DirectAccess, Hardening

EngineName = Literal["vllm", "ollama", "onnx", "llamacpp"]
#: What `modelId` is, per engine: vLLM and the ONNX server read a Hugging Face repository (or a folder), Ollama
#: pulls a model by its name; llama.cpp serves the GGUF file of `llamacpp.gguf` and `modelId` names the model it was
#: made from (a repository id).
MODEL_ID_RULES: dict[str, NameRule] = {
    "vllm": VLLM_MODEL,
    "onnx": VLLM_MODEL,
    "ollama": OLLAMA_MODEL,
    "llamacpp": VLLM_MODEL,
}
#: The served name: Ollama builds (`ollama create`) or copies the model under it, so it is an Ollama name there.
SERVED_NAME_RULES: dict[str, NameRule] = {
    "vllm": SERVED_MODEL_NAME,
    "onnx": SERVED_MODEL_NAME,
    "ollama": OLLAMA_MODEL,
    "llamacpp": SERVED_MODEL_NAME,
}


def _llamacpp_from_catalogue(data: dict[str, Any], repository: str, gguf: Any) -> dict[str, Any]:
    """A llamacpp model from the catalogue: `modelId` is the original repository; the catalogue's GGUF file is the
    default `llamacpp.gguf` (downloaded from its repository)."""
    settings = data.get("llamacpp")
    if gguf is not None and (settings is None or (isinstance(settings, dict) and "gguf" not in settings)):
        settings = {**(settings or {}), "gguf": {"repo": gguf.repo, "file": gguf.file}}
    return {**data, "modelId": repository, **({"llamacpp": settings} if settings is not None else {})}


#: A model's namespace when `namespace` is unset: `slm-<name>`.
MODEL_NAMESPACE_PREFIX = "slm-"


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
    model_id: ContainerText = Field(
        min_length=1,
        # The reference shows it as required only without `catalog` (the catalogue fills it in before validation).
        json_schema_extra={"defaultFrom": "catalog"},
        description="What the engine loads: a Hugging Face repository id (`org/name`) or an absolute folder for vLLM "
        "and onnx, an Ollama name (`[host/][namespace/]model[:tag]`) for Ollama, the repository the GGUF file was made "
        "from for llamacpp (which serves `llamacpp.gguf`); from the catalogue when `catalog` is set and this is not.",
    )
    sizing: ModelSizing | None = Field(
        None, description="Size the server from the architecture: vLLM flags, tensor parallelism, GPU fit."
    )
    served_model_name: ContainerText | None = Field(
        None,
        description="Name clients ask for in the OpenAI API; the model name when unset. With Ollama the model is "
        "built or copied under this name, so it must be an Ollama name.",
    )
    namespace: DnsLabel | None = Field(None, description="Namespace of the model; `slm-<name>` when unset.")
    replicas: int = Field(1, ge=1, description="Server replicas (prod stacks run at least 2).")
    resources: Resources = Field(default_factory=Resources, description="CPU and memory of the server.")
    gpu: Gpu = Field(default_factory=Gpu, description="GPUs per replica and the pool they come from.")
    image: ImageRef | None = Field(None, description="Overrides the engine's pinned image.")
    cache: CacheVolume = Field(default_factory=CacheVolume, description="The model cache volume.")
    weights: Weights = Field(
        default_factory=Weights,
        description="Where the server reads the weights: the cache volume (default) or an image volume "
        "(docs/image-volume-weights.md).",
    )
    hf_token_secret: str | None = Field(
        None,
        description="Key under `secrets` holding a Hugging Face token, for gated models (letters, digits, '-', '_' "
        "and '.': it keys the model's Secret).",
    )
    startup_timeout_seconds: int = Field(
        1800,
        ge=60,
        description="How long the server may take to download and load the model before it is restarted.",
    )
    vllm: VllmSettings | None = Field(None, description="vLLM flags (engine vllm only).")
    lora: LoraSettings | None = Field(
        None,
        description="LoRA adapters served under their own model names, loaded at start-up (engine vllm only; "
        "docs/lora.md).",
    )
    ollama: OllamaSettings | None = Field(None, description="Ollama settings (engine ollama only).")
    onnx: OnnxSettings | None = Field(None, description="ONNX Runtime settings (engine onnx only).")
    llamacpp: LlamaCppSettings | None = Field(
        None, description="llama.cpp server settings and the GGUF file (engine llamacpp, where it is required)."
    )
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Queue-based autoscaling.")
    vpa: VerticalAutoscaling = Field(
        default_factory=VerticalAutoscaling, description="CPU and memory recommendations (VerticalPodAutoscaler)."
    )
    throughput: Throughput | None = Field(
        None,
        description="Output tokens per second per replica (declared or from a bench file), for the cost per million "
        "tokens `slm-deploy cost` reports; nothing deployed changes (docs/cost.md).",
    )
    inference_pool: InferencePoolSettings = Field(
        default_factory=InferencePoolSettings,
        description="Cache- and queue-aware routing through an InferencePool and llm-d's endpoint picker (off: plain "
        "Service routing; docs/inference-pool.md).",
    )
    versions: ModelVersions | None = Field(
        None,
        description="A canary rollout: a stable and a canary revision served side by side, the model's requests split "
        "between them by weight (docs/canary.md). Unset: one revision, the model's keys.",
    )
    hardening: Hardening = Field(
        default_factory=Hardening, description="Security defaults; change one only to opt out of it."
    )
    direct_access: DirectAccess = Field(
        default_factory=DirectAccess,
        description="Calls from `network.ingressFromNamespaces` past the entry point: checked with API keys unless "
        "`unauthenticatedReason` says why not.",
    )
    labels: Labels = Field(default_factory=dict, description="Extra labels on the model's objects.")

    @model_validator(mode="before")
    @classmethod
    def _model_id_from_catalogue(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("catalog") and not data.get("modelId") and not data.get("model_id"):
            from infra.catalog import UnknownModelError, get_model

            try:
                entry = get_model(str(data["catalog"]))
            except UnknownModelError as error:
                raise ValueError(str(error)) from None
            if data.get("engine") == "llamacpp":
                return _llamacpp_from_catalogue(data, entry.engines.vllm, entry.engines.llamacpp)
            model_id = getattr(entry.engines, str(data.get("engine")), None)
            if model_id:
                return {**data, "modelId": model_id}
        return data

    @field_validator("model_id")
    @classmethod
    def _model_id_for_its_engine(cls, value: str, info: ValidationInfo) -> str:
        rule = MODEL_ID_RULES.get(str(info.data.get("engine")))
        return refuse(rule, value) if rule is not None else value

    @field_validator("served_model_name")
    @classmethod
    def _served_name_for_its_engine(cls, value: str | None, info: ValidationInfo) -> str | None:
        rule = SERVED_NAME_RULES.get(str(info.data.get("engine")))
        return refuse(rule, value) if rule is not None and value is not None else value

    @field_validator("hf_token_secret")
    @classmethod
    def _secret_key(cls, value: str | None) -> str | None:
        # The name is the key of the model's Secret (and the file name where the secret is mounted).
        return None if value is None else refuse(DATA_KEY, value, "secret name")

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

    def _fits_its_memory(self, settings: LlamaCppSettings) -> None:
        """On CPU, the GGUF weights and the KV cache of ``ctxSize`` live in the container's memory limit."""
        if self.catalog is None and self.architecture is None:
            return
        from infra.catalog import resolve_architecture
        from infra.config.quantity import gibibytes
        from infra.sizing.gguf import gguf_type, memory_bytes

        quantisation = gguf_type(settings.gguf.file)
        if quantisation is None:
            return
        needed = memory_bytes(resolve_architecture(self.catalog, self.architecture), quantisation, settings.ctx_size)
        limit = gibibytes(self.resources.limits.memory) * 2**30
        if limit < needed:
            raise ValueError(
                f"{settings.gguf.file} ({quantisation}) with llamacpp.ctxSize {settings.ctx_size} needs about "
                f"{needed / 2**30:.1f} GiB (weights, F16 KV cache, overhead; docs/sizing.md), but "
                f"resources.limits.memory is {self.resources.limits.memory}"
            )

    def gated_download(self, model_download: str) -> str | None:
        """The gated Hugging Face repository this model downloads at start-up (vLLM, or an ONNX preparation from
        it, or a llamacpp GGUF from its publisher), when the catalogue marks it gated and downloads are allowed."""
        if self.catalog is None or model_download != "allow" or self.weights.image_volume:
            return None
        from infra.catalog import UnknownModelError, get_model

        try:
            gated = get_model(self.catalog).gated_repositories()
        except UnknownModelError:
            return None  # reported at `catalog`
        prepare = self.onnx.prepare if self.engine == "onnx" and self.onnx is not None else None
        gguf = self.llamacpp.gguf.repo if self.engine == "llamacpp" and self.llamacpp is not None else None
        loaded = {self.model_id} if self.engine == "vllm" else {prepare.source} if prepare is not None else {gguf}
        found = sorted(str(repository) for repository in loaded & gated)
        return found[0] if found else None

    def _serves_its_adapters(self, lora: LoraSettings) -> None:
        if self.engine != "vllm":
            raise ValueError(
                f"lora serves LoRA adapters through vLLM's --enable-lora, but the engine is '{self.engine}'"
            )
        for index, adapter in enumerate(lora.adapters):
            if adapter.name in (self.api_model_name, self.name):
                raise ValueError(
                    f"lora.adapters[{index}].name '{adapter.name}' is the model's own name: an adapter needs a "
                    "name of its own"
                )
            if adapter.repo is not None and self.weights.image_volume:
                raise ValueError(
                    f"lora.adapters[{index}].repo is downloaded into the cache volume, which a model whose weights "
                    "come in an image volume does not have: give the adapter as an image"
                )

    def _reads_an_image_volume(self) -> None:
        if self.engine != "vllm":
            raise ValueError(
                f"weights.source imageVolume is served by engine 'vllm' (it loads the mounted folder), but the engine "
                f"is '{self.engine}': use weights.source cache"
            )
        if "cache" in self.model_fields_set:
            raise ValueError(
                "cache is set, but weights.source is imageVolume: the model has no cache volume (remove cache)"
            )
        for track, version in self.versions.by_track().items() if self.versions is not None else ():
            if version.model_id is not None:
                raise ValueError(
                    f"versions.{track}.modelId would be ignored: with weights.source imageVolume both revisions load "
                    "the weights image (/weights); remove modelId there"
                )

    @property
    def has_cache_volume(self) -> bool:
        """Whether the model has its cache claim (``<model>-cache``): not when the weights come in an image."""
        return not self.weights.image_volume

    def revision(self, version: ModelVersion) -> ModelConfig:
        """The model as a revision of a canary rollout serves it: the model's keys with the revision's (an engine
        block replaces the model's whole), validated again."""
        # What the stack file set (not the defaults: a key like cache counts as given when it is in the data).
        base = self.model_dump(by_alias=True, exclude_unset=True, exclude={"versions"})
        return ModelConfig.model_validate({**base, **version.overrides()})

    @property
    def canary_has_own_cache(self) -> bool:
        """Whether the canary revision loads other weights than the stable one (then it has its own model cache)."""
        if self.versions is None:
            return False
        stable, canary = self.revision(self.versions.stable), self.revision(self.versions.canary)
        return (stable.model_id, stable.llamacpp, stable.onnx) != (canary.model_id, canary.llamacpp, canary.onnx)

    @property
    def max_replicas(self) -> int:
        return self.autoscaling.max_replicas if self.autoscaling.enabled else self.replicas

    @property
    def scales_to_zero(self) -> bool:
        return self.autoscaling.enabled and self.autoscaling.scale_to_zero.enabled

    @property
    def wake_timeout_seconds(self) -> int:
        """How long the HTTP add-on's interceptor holds a request while a replica starts: the configured budget, or
        as long as the startup probe lets the server take."""
        return self.autoscaling.scale_to_zero.wake_timeout_seconds or self.startup_timeout_seconds

    @property
    def k8s_namespace(self) -> str:
        return self.namespace or f"{MODEL_NAMESPACE_PREFIX}{self.name}"

    @property
    def api_model_name(self) -> str:
        return self.served_model_name or self.name

    @model_validator(mode="after")
    def _engine_fits(self) -> ModelConfig:
        for engine in ("vllm", "ollama", "onnx", "llamacpp"):
            if engine != self.engine and getattr(self, engine) is not None:
                raise ValueError(f"'{engine}' settings given, but the engine is '{self.engine}'")
        if self.autoscaling.enabled and self.engine == "ollama" and not self.scales_to_zero:
            raise ValueError(
                "autoscaling needs a queue metric, and engine 'ollama' exports none (ollama#3144): "
                "scale it with replicas, serve the model with vllm or onnx, or let it scale to zero "
                "(autoscaling.scaleToZero: the HTTP add-on's interceptor counts its requests)"
            )
        if self.engine == "vllm" and self.gpu.count == 0:
            raise ValueError("engine 'vllm' serves on GPUs: set gpu.count to 1 or more")
        if self.engine == "onnx" and self.gpu.count > 0 and (self.onnx or OnnxSettings()).device == "cpu":
            raise ValueError(
                f"gpu.count is {self.gpu.count}, but engine 'onnx' on device 'cpu' is CPU-only "
                "(set onnx.device: cuda, or gpu.count: 0)"
            )
        if self.lora is not None:
            self._serves_its_adapters(self.lora)
        if self.weights.image_volume:
            self._reads_an_image_volume()
        elif self.max_replicas > 1 and self.cache.access_mode != "ReadWriteMany":
            raise ValueError(
                f"cache.accessMode {self.cache.access_mode} cannot be shared by {self.max_replicas} replicas on "
                "different nodes: use ReadWriteMany (e.g. storageClass azurefile-csi-premium on AKS)"
            )
        if self.engine == "llamacpp" and self.llamacpp is None:
            raise ValueError(
                "engine 'llamacpp' serves a GGUF file: set llamacpp.gguf (file, and repo or url to download it)"
            )
        if self.engine == "llamacpp" and "," in self.api_model_name:
            raise ValueError(
                f"served model name '{self.api_model_name}' contains ',', which llama-server's --alias reads as "
                "a list of names"
            )
        if self.engine == "llamacpp" and self.llamacpp is not None and self.gpu.count == 0:
            self._fits_its_memory(self.llamacpp)
        if self.engine == "onnx" and self.image is None:
            raise ValueError(
                "engine 'onnx' runs the server image built from templates/docker/onnx-server.Dockerfile.j2: set image "
                "(repository, tag) to where you pushed it"
            )
        settings = self.vllm or VllmSettings()
        if settings.tensor_parallel_size and settings.tensor_parallel_size > self.gpu.count:
            raise ValueError(
                f"vllm.tensorParallelSize {settings.tensor_parallel_size} needs as many GPUs, "
                f"but gpu.count is {self.gpu.count}"
            )
        return self
