"""What an engine adapter tells the model server: image, command, ports, probes, writable paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from infra.config.images import ImageRef
from infra.sizing.vm_sizes import GpuVmSize


@dataclass(frozen=True)
class EngineContext:
    """What an engine adapter needs to know of the stack beyond the model itself."""

    #: The Azure VM size the model's GPUs come from (its own ``gpu.vmSize`` or its AKS pool's), if known.
    gpu_vm_size: str | None = None
    #: One slice of a shared GPU when the model's pool shares its GPUs (sizing fits the model to it).
    gpu_slice: GpuVmSize | None = None
    #: Whether the network lets the server download weights at start-up (``network.modelDownload``).
    downloads_allowed: bool = False


@dataclass(frozen=True)
class WritablePath:
    """A directory the engine writes to. The root filesystem is read-only, so each gets a volume."""

    name: str
    mount_path: str
    #: ``Memory`` for tmpfs (``/dev/shm``); disk-backed emptyDir otherwise.
    medium: str | None = None
    size_limit: str | None = None


@dataclass(frozen=True)
class ImageVolume:
    """An OCI image the server's pod mounts read-only (a Kubernetes image volume): the model's weights."""

    name: str
    #: The image, as a container's ``image`` (``repository:tag@sha256:…``).
    reference: str
    #: ``IfNotPresent`` or ``Always`` (``models[].weights.pullPolicy``).
    pull_policy: str
    mount_path: str


@dataclass(frozen=True)
class PrepareStep:
    """An init container that readies the model (pull, convert) before the server takes traffic.

    It runs with the server's image, hardening, volumes and environment, so it writes where the
    server reads; if it fails, the pod stays in Init:Error where everyone can see it.
    """

    name: str
    command: list[str]
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Preparation:
    """A Job that readies the model in the cache volume before the server starts (download, convert).

    Its steps run in order, in one pod: all but the last as init containers, the last as the Job's
    container. The server's Deployment waits for the Job to complete.
    """

    image: ImageRef
    steps: tuple[PrepareStep, ...]
    #: Plain environment of every step (paths, caches); secrets never go here.
    env: dict[str, str] = field(default_factory=dict)
    #: Where the steps mount the model-cache volume.
    cache_mount_path: str = "/models"
    #: Variables that receive the Hugging Face token (its value, or a mounted file's path), for gated models.
    hf_token_env: str = "HF_TOKEN"
    hf_token_path_env: str = "HF_TOKEN_PATH"
    #: Scratch space of the steps (``/tmp``).
    scratch_size_limit: str = "8Gi"


@dataclass(frozen=True)
class ApiKeyFile:
    """How an engine checks API keys (``Authorization: Bearer <key>``) read from a mounted file.

    The engine says only how: the file's format and how the server is pointed at it. The model server
    component writes the file into a Secret of the model's namespace and mounts it read-only.
    """

    #: ``json``: a JSON object of client name to key (the stack secret's own format);
    #: ``lines``: one key per line.
    file_format: Literal["json", "lines"]
    #: The variable that receives the file's path, or ``None``.
    path_env: str | None = None
    #: The flag whose value is the file's path (appended to the arguments as two words), or ``None``.
    path_flag: str | None = None
    #: The metrics endpoint asks for a key too: Prometheus then scrapes with a key of its own.
    metrics_need_key: bool = False


@dataclass(frozen=True)
class EngineSpec:
    """An engine's contract with the model server component."""

    #: Value of ``app.kubernetes.io/name``.
    app_name: str
    container_name: str
    image: ImageRef
    command: list[str]
    args: list[str]
    #: Plain environment; secrets never go here (they come by ``secretKeyRef``).
    env: dict[str, str]
    #: The OpenAI-compatible API port.
    port: int
    health_path: str
    #: Where the engine serves Prometheus metrics, or ``None`` when it has no endpoint.
    metrics_path: str | None
    metrics_port: int | None
    #: Where the model-cache volume is mounted.
    cache_mount_path: str
    writable_paths: list[WritablePath] = field(default_factory=list)
    #: Images mounted read-only into the server (weights in an image volume).
    image_volumes: tuple[ImageVolume, ...] = ()
    #: Variable that receives the Hugging Face token's value (kubernetes secret backend).
    hf_token_env: str | None = None
    #: Variable that receives the path of the mounted token file (file-only backends).
    hf_token_path_env: str | None = None
    #: The OpenAI API's base path.
    api_base_path: str = "/v1"
    #: Steps run before the server starts, in order, as init containers of the server's pod.
    prepare: tuple[PrepareStep, ...] = ()
    #: A Job that readies the model before the server's pod starts, when the engine needs one.
    preparation: Preparation | None = None
    #: Files the engine reads (file name → text), mounted read-only from a ConfigMap.
    config_files: dict[str, str] = field(default_factory=dict)
    config_mount_path: str = "/etc/slm-deploy/engine"
    #: The queue (waiting requests) the autoscaler scales on, and the label naming the served model on the
    #: engine's series (``None``: series are per pod, without a model label).
    queue_metric: str = "vllm:num_requests_waiting"
    metrics_model_label: str | None = "model_name"
    #: The server can check API keys from a mounted file (``None``: it cannot read keys from a file).
    api_key_file: ApiKeyFile | None = None
    #: Instead of a key file: the variable from which the server reads the one key it accepts (``None``: none).
    #: The model gets a key of its own in a Secret; the entry point checks the client's key and sends this one.
    server_key_env: str | None = None

    port_name: str = "http"

    @property
    def disk_size_limits(self) -> list[str]:
        """The ``sizeLimit`` of every disk-backed writable path (tmpfs counts against memory, not disk)."""
        unbounded = [p.name for p in self.writable_paths if p.medium != "Memory" and p.size_limit is None]
        if unbounded:
            raise ValueError(f"engine {self.app_name}: writable paths {unbounded} need a size limit")
        return [p.size_limit for p in self.writable_paths if p.medium != "Memory" and p.size_limit is not None]

    @property
    def metrics_port_name(self) -> str | None:
        if self.metrics_port is None:
            return None
        return self.port_name if self.metrics_port == self.port else "metrics"
