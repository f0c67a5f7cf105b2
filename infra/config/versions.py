"""Canary rollouts of a model (`models[].versions`): two revisions of one model served side by side, with weights.

A model that declares ``versions`` runs a ``stable`` and a ``canary`` revision, each its own Deployment, Service
and PodDisruptionBudget named ``<model>-<version>`` (its own model cache when it loads other weights), and the entry
point's HTTPRoute splits the model's requests between the two Services by weight (Gateway API ``backendRefs[].weight``,
https://gateway-api.sigs.k8s.io/guides/traffic-splitting). The shape follows what the serving platforms call these:
Argo Rollouts' ``stableService``/``canaryService`` and ``setWeight`` (percent), KServe's ``canaryTrafficPercent``
(the new revision's percent, the rest to the last good one). Weights here are percent and must add up to 100, so a
reviewer reads the split from the stack file as it is served. See ``docs/canary.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from infra.config.base import ConfigModel, KeyPathError
from infra.config.engines import LlamaCppSettings, OllamaSettings, OnnxSettings, VllmSettings
from infra.config.images import ImageRef
from infra.config.k8s_names import DNS_1035_LABEL, refuse
from infra.config.names import ContainerText

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

Track = Literal["stable", "canary"]
TRACKS: tuple[Track, ...] = ("stable", "canary")
#: The label the scrape copies from a version's Service onto the engine's series (docs/canary.md).
METRIC_VERSION_LABEL = "model_version"
#: The longest version name: ``<model>-<version>-engine-config`` must stay a DNS subdomain and the version a label.
MAX_VERSION_NAME = 20
#: Engines whose metrics the comparison alert reads (time to first token, finished requests by reason).
COMPARED_ENGINES = frozenset({"vllm", "onnx"})
#: The keys a version may set; everything else (resources, GPU, hardening …) is the model's for both.
VERSION_KEYS = ("image", "modelId", "replicas", "vllm", "ollama", "onnx", "llamacpp")


class ModelVersion(ConfigModel):
    """One revision of the model: its name, its share of the requests, and what differs from the model's keys."""

    name: str = Field(
        description="The revision's name (e.g. `v1`, `2026-12`): a DNS label of at most 20 characters starting with "
        "a letter; names the version's Deployment and Service (`<model>-<name>`) and its `slm-deploy.io/version` label."
    )
    weight: int = Field(ge=0, le=100, description="Percent of the model's requests; stable and canary add up to 100.")
    image: ImageRef | None = Field(None, description="The revision's server image (the model's when unset).")
    model_id: ContainerText | None = Field(None, description="What the revision loads (the model's when unset).")
    replicas: int | None = Field(None, ge=1, description="Replicas of the revision (the model's when unset).")
    vllm: VllmSettings | None = Field(None, description="Replaces the model's `vllm` block for this revision.")
    ollama: OllamaSettings | None = Field(None, description="Replaces the model's `ollama` block for this revision.")
    onnx: OnnxSettings | None = Field(None, description="Replaces the model's `onnx` block for this revision.")
    llamacpp: LlamaCppSettings | None = Field(
        None, description="Replaces the model's `llamacpp` block for this revision."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > MAX_VERSION_NAME:
            raise ValueError(f"'{value}' is longer than {MAX_VERSION_NAME} characters")
        return refuse(DNS_1035_LABEL, value, "version name")

    def overrides(self) -> dict[str, Any]:
        """The model keys this revision sets (camelCase, as in the stack file)."""
        data = self.model_dump(by_alias=True, exclude_none=True, exclude={"name", "weight"})
        return {key: data[key] for key in VERSION_KEYS if key in data}


class ModelVersions(ConfigModel):
    """The two revisions of a canary rollout and how the model's requests are split between them."""

    stable: ModelVersion = Field(description="The revision serving now (promote: give the canary its weight).")
    canary: ModelVersion = Field(description="The revision being tried on a share of the requests.")

    @model_validator(mode="after")
    def _split(self) -> ModelVersions:
        if self.stable.name == self.canary.name:
            raise ValueError(f"stable and canary are both named '{self.stable.name}': name each revision")
        total = self.stable.weight + self.canary.weight
        if total != 100:
            raise ValueError(
                f"weights add up to {total} (stable {self.stable.weight} + canary {self.canary.weight}): they are "
                "percent of the model's requests and must add up to 100"
            )
        return self

    def by_track(self) -> dict[Track, ModelVersion]:
        return {"stable": self.stable, "canary": self.canary}


def workload_name(model: str, version: str | None) -> str:
    """The Deployment, Service and PodDisruptionBudget of a model (or of one of its versions)."""
    return model if version is None else f"{model}-{version}"


def check_versions(stack: StackConfig) -> None:
    """Cross-field checks of every versioned model (one line at the key that is wrong)."""
    for index, model in enumerate(stack.models):
        versions = model.versions
        if versions is None:
            continue
        at: tuple[str | int, ...] = ("models", index, "versions")
        for key, on, why in (
            (
                "inferencePool",
                model.inference_pool.enabled,
                "a pool has one endpoint picker for one set of pods; turn it off for the rollout, on after it",
            ),
            (
                "autoscaling",
                model.autoscaling.enabled,
                "the queue metric does not tell the revisions apart; give each revision fixed replicas",
            ),
            ("vpa", model.vpa.enabled, "recommendations are per Deployment; turn them off for the rollout"),
        ):
            if on:
                raise KeyPathError(
                    (*at[:2], key, "enabled"),
                    f"a model with versions (a canary rollout) cannot use {key}: {why} (docs/canary.md)",
                )
        if not stack.entry_point.exposes(model.name):
            raise KeyPathError(
                at,
                "the weights split the entry point's HTTPRoute, but the model is not routed: enable entryPoint (and "
                "list the model in entryPoint.models when that list is set)",
            )
        for track, version in versions.by_track().items():
            try:
                served = model.revision(version)
            except ValidationError as error:
                first = error.errors()[0]
                loc = tuple(str(part) if not isinstance(part, int) else part for part in first["loc"])
                raise KeyPathError((*at, track, *loc), str(first["msg"]).removeprefix("Value error, ")) from None
            if served.onnx is not None and served.onnx.prepare is not None:
                raise KeyPathError(
                    (*at, track, "onnx", "prepare"),
                    "a preparation Job per revision is not supported: prepare the model into an image or a folder",
                )
        if not model.canary_has_own_cache and model.cache.access_mode != "ReadWriteMany":
            raise KeyPathError(
                (*at[:2], "cache", "accessMode"),
                f"both revisions mount the model cache, and {model.cache.access_mode} attaches to one node: use "
                "ReadWriteMany (e.g. storageClass azurefile-csi-premium on AKS), or give the canary other weights",
            )
        if stack.environment == "prod" and (model.engine not in COMPARED_ENGINES or stack.monitoring.mode == "none"):
            raise KeyPathError(
                at,
                "a canary in prod needs the stable-versus-canary comparison alert, which reads vLLM's (or the ONNX "
                f"server's) metrics through the stack's monitoring: engine '{model.engine}', monitoring.mode "
                f"'{stack.monitoring.mode}' (docs/canary.md)",
            )
