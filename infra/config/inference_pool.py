"""Cache- and queue-aware routing for one model (`models[].inferencePool`): an InferencePool and its endpoint picker.

With it on, the entry point's HTTPRoute sends the model's requests to an ``inference.networking.k8s.io/v1``
InferencePool instead of the model's Service, and the gateway asks the pool's endpoint picker (EPP, llm-d's
router) which pod serves each request: the one with the shortest queue, the most free KV cache and the longest
cached prefix of the prompt, read from vLLM's metrics. Off by default: plain Service routing (kube-proxy spreads
connections at random) stays what it was. See ``docs/inference-pool.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from infra.config.base import ConfigModel, KeyPathError
from infra.config.images import ImageRef
from infra.config.network import cidr_block
from infra.config.resources import ResourceList, Resources

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

#: The Gateway API Inference Extension release whose InferencePool (v1) the render targets
#: (sigs.k8s.io/gateway-api-inference-extension v1.6.2,
#: config/crd/bases/inference.networking.k8s.io_inferencepools.yaml).
INFERENCE_EXTENSION_VERSION = "v1.6.2"
INFERENCE_POOL_API = "inference.networking.k8s.io/v1"
#: llm-d's router endpoint picker, pinned by tag and digest. The digest is the OCI index of the v0.10.0 tag as
#: recorded by public dependency records of projects that pin it; the image serves ext-proc on 9002, gRPC health
#: on 9003 and Prometheus metrics on 9090 (llm-d/llm-d-router config/charts/routerlib/templates/_deployment.yaml).
EPP_IMAGE = ImageRef(
    repository="ghcr.io/llm-d/llm-d-router-endpoint-picker",
    tag="v0.10.0",
    digest="sha256:2e516fa1310da7be59b82beb1445362139597d6d553ef04d546716abe3aaaa70",
)
#: Engines whose metrics the picker's scorers read (queue length, KV-cache use; prefix hashes from the prompts).
PICKER_ENGINES = frozenset({"vllm"})
#: Where the API server may be when the cluster's address is not known: the private ranges (AKS with API Server
#: VNet Integration, a private cluster, or an on-premises control plane).
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


class EndpointPickerResources(Resources):
    """CPU and memory of the endpoint picker (one process keeping the pool's metrics and prefix index)."""

    requests: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="250m", memory="256Mi"), description="What the scheduler reserves."
    )
    limits: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="2", memory="1Gi"), description="The most the picker may use."
    )


class InferencePoolSettings(ConfigModel):
    """Route the model through an InferencePool and llm-d's endpoint picker instead of its Service."""

    enabled: bool = Field(
        False,
        description="Route through an InferencePool whose endpoint picker chooses the pod per request (prefix "
        "cache, queue and KV-cache aware). Needs engine vllm and more than one replica; off keeps plain Service "
        "routing.",
    )
    image: ImageRef = Field(EPP_IMAGE, description="The endpoint picker's image (llm-d router EPP, pinned).")
    failure_mode: Literal["FailClose", "FailOpen"] = Field(
        "FailClose",
        description="What the gateway does when the picker does not answer: refuse the request (FailClose) or send "
        "it to any pod of the pool (FailOpen).",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=1,
        description="Picker replicas. One: the prefix index lives in the picker's memory (llm-d recommends a single "
        "active replica); the pod is restarted in seconds.",
    )
    resources: EndpointPickerResources = Field(
        default_factory=EndpointPickerResources, description="CPU and memory of the picker."
    )
    api_server_cidrs: list[str] = Field(
        default_factory=lambda: list(PRIVATE_RANGES),
        min_length=1,
        description="Address blocks of the Kubernetes API server, the picker's only egress besides DNS and the model's "
        "pods (it watches the pool and its pods). On AKS without API Server VNet Integration, the API server's "
        "public address as /32.",
    )

    @field_validator("api_server_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            if cidr_block(cidr).prefixlen == 0:
                raise ValueError(f"'{cidr}' is every address: name the API server's address blocks")
        return value


def check_inference_pools(stack: StackConfig) -> None:
    """Cross-field checks: a pool needs a vLLM model with more than one replica, routed by the entry point."""
    for index, model in enumerate(stack.models):
        pool = model.inference_pool
        if not pool.enabled:
            continue
        at = ("models", index, "inferencePool", "enabled")
        if model.engine not in PICKER_ENGINES:
            raise KeyPathError(
                at,
                f"the endpoint picker scores pods from vLLM's queue and KV-cache metrics, but the engine is "
                f"'{model.engine}': keep plain Service routing (inferencePool.enabled: false)",
            )
        if model.max_replicas < 2:
            raise KeyPathError(
                at,
                "an InferencePool picks among replicas, but the model has one: set replicas (or "
                "autoscaling.maxReplicas) to 2 or more, or keep plain Service routing",
            )
        if not stack.entry_point.exposes(model.name):
            raise KeyPathError(
                at,
                "the pool is a backend of the entry point's HTTPRoute, but the model is not routed: enable "
                "entryPoint (and list the model in entryPoint.models when that list is set)",
            )


def pool_name(model: str) -> str:
    """The InferencePool of a model (in the model's namespace)."""
    return model


def picker_name(model: str) -> str:
    """The endpoint picker's Deployment, Service, ServiceAccount and ConfigMap (in the model's namespace)."""
    return f"{model}-epp"
