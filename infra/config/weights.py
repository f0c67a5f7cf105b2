"""Where a model server reads its weights (stack key `models[].weights`): the model cache volume, filled by a
download at start-up (or by hand), or an OCI image mounted read-only as an image volume (docs/image-volume-weights.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from infra.config.base import ConfigModel
from infra.config.images import ImageRef

WeightsSourceName = Literal["cache", "imageVolume"]
#: The pull policies a stack may choose for an image volume. `Never` is refused: the kubelet would mount whatever
#: a node holds under that name, content no registry (nor the pack's allow-list) vouched for.
ImagePullPolicy = Literal["IfNotPresent", "Always"]

#: Where the server finds the weights of an image volume (the image's root; docs/image-volume-weights.md).
WEIGHTS_MOUNT_PATH = "/weights"


class Weights(ConfigModel):
    """Where the model server reads the model's weights."""

    source: WeightsSourceName = Field(
        "cache",
        description="`cache`: the model cache volume (a PersistentVolumeClaim), filled by the engine's download at "
        "start-up or by hand (docs/model-cache.md). `imageVolume`: an OCI image holding the model folder (made "
        "with `slm-deploy pack-weights`), mounted read-only at /weights; nothing is downloaded and the model has "
        "no cache volume (vLLM only; Kubernetes 1.35 or later, where image volumes are on by default).",
    )
    image: ImageRef | None = Field(
        None,
        description="The weights image (`source: imageVolume`): repository in the stack's registry, tag, and in "
        "prod the digest `slm-deploy pack-weights` printed (the pack requires it there).",
    )
    pull_policy: ImagePullPolicy = Field(
        "IfNotPresent",
        description="`IfNotPresent` (a node pulls the image once and every later pod of the model on it starts "
        "without a transfer) or `Always` (the kubelet asks the registry at every pod start). `Never` is refused.",
    )

    @model_validator(mode="after")
    def _image_matches_source(self) -> Weights:
        if self.source == "imageVolume" and self.image is None:
            raise ValueError(
                "source imageVolume mounts an image: set image (repository, tag and digest of the image "
                "`slm-deploy pack-weights` pushed)"
            )
        if self.source == "cache" and self.image is not None:
            raise ValueError("image is set, but source is cache: set source: imageVolume, or remove image")
        return self

    @property
    def image_volume(self) -> bool:
        return self.source == "imageVolume"
