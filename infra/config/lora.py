"""LoRA adapters a vLLM model serves under their own names (stack key `models[].lora`; docs/lora.md).

Each adapter is fetched as the weights are: from a Hugging Face repository into the model's cache volume at start-up
(`repo`, as vLLM resolves a `--lora-modules` path that is not a folder: huggingface_hub's snapshot_download,
``vllm/lora/utils.py`` ``get_adapter_absolute_path``), or from an OCI image mounted read-only (`image`, made with
`slm-deploy pack-weights` like the weights). Adapters are declared here and loaded at start-up only: loading them
at run time (``VLLM_ALLOW_RUNTIME_LORA_UPDATING`` and the ``/v1/load_lora_adapter`` endpoints it opens) stays
refused by the pack (``engine-arguments``).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from infra.config.base import ConfigModel
from infra.config.images import ImageRef
from infra.config.k8s_names import HF_REPO_ID, SERVED_MODEL_NAME, refuse, show
from infra.config.names import ContainerText

#: The ranks vLLM accepts for ``--max-lora-rank`` (``MaxLoRARanks`` in ``vllm/config/lora.py``).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
#: Where an adapter from an image is mounted: ``/lora/<index of the adapter>``.
LORA_MOUNT_ROOT = "/lora"


class LoraAdapter(ConfigModel):
    """One adapter, served as its own model name."""

    name: ContainerText = Field(
        description="The model name clients ask for (the OpenAI `model` field); unique in the stack, and no model's "
        "served name. No '=', ',' or spaces: vLLM reads `--lora-modules name=path` words."
    )
    rank: int = Field(
        ge=1,
        le=LORA_RANKS[-1],
        description="The adapter's rank (`r` in its adapter_config.json); at most `lora.maxRank`.",
    )
    repo: str | None = Field(
        None,
        description="A Hugging Face repository holding the adapter, downloaded into the model's cache volume at "
        "start-up (pre-filled when downloads are denied). Give `repo` or `image`.",
    )
    image: ImageRef | None = Field(
        None,
        description="An OCI image holding the adapter folder at its root (`slm-deploy pack-weights`), mounted "
        "read-only at /lora/<index>. Give `repo` or `image`.",
    )

    @field_validator("name")
    @classmethod
    def _name_on_the_command_line(cls, value: str) -> str:
        refuse(SERVED_MODEL_NAME, value)
        for character, why in (("=", "separates name and path"), (",", "makes vLLM read the word as JSON")):
            if character in value:
                raise ValueError(f"{show(value)} contains '{character}', which {why} in --lora-modules")
        if any(c.isspace() for c in value):
            raise ValueError(f"{show(value)} contains a space: --lora-modules takes one word per adapter")
        return value

    @field_validator("repo")
    @classmethod
    def _repository_id(cls, value: str | None) -> str | None:
        return None if value is None else refuse(HF_REPO_ID, value)

    @model_validator(mode="after")
    def _one_source(self) -> LoraAdapter:
        if (self.repo is None) == (self.image is None):
            raise ValueError("give repo (a Hugging Face repository) or image (an OCI image), not both nor neither")
        return self


class LoraSettings(ConfigModel):
    """Multi-LoRA serving on vLLM: `--enable-lora`, `--lora-modules`, `--max-lora-rank`, `--max-loras`."""

    adapters: list[LoraAdapter] = Field(min_length=1, description="The adapters, each under its own model name.")
    max_rank: int | None = Field(
        None,
        description=f"`--max-lora-rank`: one of vLLM's ranks ({', '.join(map(str, LORA_RANKS))}), at least every "
        "adapter's rank; the smallest that fits when unset. GPU memory for adapters grows with it.",
    )
    max_loras: int | None = Field(
        None,
        ge=1,
        description="`--max-loras`: adapters used in one batch; the number of adapters when unset.",
    )

    @field_validator("max_rank")
    @classmethod
    def _a_vllm_rank(cls, value: int | None) -> int | None:
        if value is not None and value not in LORA_RANKS:
            raise ValueError(f"{value} is not a rank vLLM accepts ({', '.join(map(str, LORA_RANKS))})")
        return value

    @model_validator(mode="after")
    def _adapters_fit(self) -> LoraSettings:
        first: dict[str, int] = {}
        for index, adapter in enumerate(self.adapters):
            if adapter.name in first:
                raise ValueError(
                    f"adapters[{index}].name '{adapter.name}' is already used by adapters[{first[adapter.name]}]"
                )
            first[adapter.name] = index
            if self.max_rank is not None and adapter.rank > self.max_rank:
                raise ValueError(
                    f"adapters[{index}].rank {adapter.rank} is above maxRank {self.max_rank} (vLLM refuses the adapter)"
                )
        return self

    @property
    def effective_max_rank(self) -> int:
        if self.max_rank is not None:
            return self.max_rank
        needed = max(adapter.rank for adapter in self.adapters)
        return next(rank for rank in LORA_RANKS if rank >= needed)

    @property
    def effective_max_loras(self) -> int:
        return self.max_loras or len(self.adapters)
