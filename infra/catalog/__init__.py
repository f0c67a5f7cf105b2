"""The model catalogue: the SLMs our users deploy, with the numbers sizing needs.

The data lives in ``models.yaml`` beside this file (package data); :func:`load_catalogue` reads and validates
it once. Importing this module is cheap: YAML is parsed on first use only.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from infra.catalog.architecture import TIER_BOUNDS, ModelArchitecture, Tier, tier_for

__all__ = [
    "TIER_BOUNDS",
    "CatalogueError",
    "CatalogueModel",
    "EngineIds",
    "ModelArchitecture",
    "Tier",
    "UnknownModelError",
    "get_model",
    "load_catalogue",
    "resolve_architecture",
    "tier_for",
]

_DATA_FILE = "models.yaml"


class CatalogueError(ValueError):
    """The catalogue file is malformed (a packaging or editing mistake, never user input)."""


class UnknownModelError(LookupError):
    """A catalogue key that does not exist; ``suggestions`` holds the close matches."""

    def __init__(self, key: str, known: list[str]) -> None:
        self.key = key
        self.suggestions = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(self.suggestions)}?" if self.suggestions else f"known: {', '.join(known)}"
        super().__init__(f"unknown model '{key}' ({hint})")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GgufFile(_Data):
    """A published GGUF build of the model, for the llamacpp engine."""

    repo: str = Field(min_length=1, description="Hugging Face repository holding the file.")
    file: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.gguf$", description="The GGUF file name.")
    source: str = Field(pattern=r"^https://", description="Where the repository and file were found.")


class EngineIds(_Data):
    """What each engine loads for the model; None where no build exists."""

    vllm: str = Field(min_length=1, description="Hugging Face repository id.")
    ollama: str | None = Field(None, description="Ollama library tag.")
    onnx: str | None = Field(None, description="Hugging Face repository with ONNX Runtime GenAI builds.")
    llamacpp: GgufFile | None = Field(None, description="A published GGUF file (llama.cpp).")


class CatalogueModel(_Data):
    """One catalogue entry. The tier is computed from the parameter count, never written in the file."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    display_name: str = Field(min_length=1)
    family: str = Field(min_length=1)
    params_billion: float = Field(gt=0)
    layers: int = Field(ge=1)
    attention_heads: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    context_length: int = Field(ge=128, description="Native context length the sizing checks against.")
    max_position_embeddings: int | None = Field(None, ge=128, description="From config.json, when it differs.")
    sliding_window: int | None = Field(None, ge=1)
    sliding_window_pattern: int | None = Field(None, ge=2)
    licence: str = Field(min_length=1)
    gated: bool = Field(
        description="The Hub repository of engines.vllm serves its files only to accounts that accepted the licence."
    )
    engines: EngineIds
    source: str = Field(pattern=r"^https://", description="Model card or config.json the numbers come from.")
    note: str | None = Field(None, description="Derivations, and anything that could not be verified.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tier(self) -> Tier:
        tier = tier_for(self.params_billion)
        assert tier is not None  # guaranteed by _in_a_tier
        return tier

    @field_validator("params_billion")
    @classmethod
    def _in_a_tier(cls, value: float) -> float:
        if tier_for(value) is None:
            raise ValueError(f"{value}B is outside every tier (0.1-30B): not a small language model")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CatalogueModel:
        self.architecture()  # the same checks a stack's own architecture gets
        return self

    def gated_repositories(self) -> frozenset[str]:
        """The Hugging Face repositories of this model that need a token with access: the original weights, and the
        builds its own publisher ships beside them (Google's GGUF of Gemma 3 asks for the same licence); builds by
        other publishers (a quantiser's GGUF) are not gated."""
        if not self.gated:
            return frozenset()
        publisher = self.engines.vllm.split("/", 1)[0] + "/"
        builds = [self.engines.onnx, self.engines.llamacpp.repo if self.engines.llamacpp else None]
        return frozenset({self.engines.vllm, *(repo for repo in builds if repo and repo.startswith(publisher))})

    def architecture(self) -> ModelArchitecture:
        return ModelArchitecture(
            params=self.params_billion,
            layers=self.layers,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            context_length=self.context_length,
            attention_heads=self.attention_heads,
            sliding_window=self.sliding_window,
            sliding_window_pattern=self.sliding_window_pattern,
        )


def _read_data() -> Any:
    from importlib.resources import files

    from infra.yamlio import load_yaml

    text = files(__name__).joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return load_yaml(text)


@functools.cache
def load_catalogue() -> dict[str, CatalogueModel]:
    """Every catalogue model by key, validated (read once per process)."""
    from pydantic import ValidationError

    data = _read_data()
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise CatalogueError(f"{_DATA_FILE}: expected a mapping under 'models'")
    catalogue: dict[str, CatalogueModel] = {}
    for key, entry in data["models"].items():
        if not isinstance(entry, dict):
            raise CatalogueError(f"{_DATA_FILE}: models.{key} is not a mapping")
        try:
            catalogue[str(key)] = CatalogueModel.model_validate({"key": key, **entry})
        except ValidationError as error:
            raise CatalogueError(f"{_DATA_FILE}: models.{key}: {error}") from error
    return catalogue


def get_model(key: str) -> CatalogueModel:
    """The catalogue model ``key``; :class:`UnknownModelError` (with close matches) otherwise."""
    catalogue = load_catalogue()
    if key not in catalogue:
        raise UnknownModelError(key, sorted(catalogue))
    return catalogue[key]


def resolve_architecture(catalog: str | None, architecture: ModelArchitecture | None) -> ModelArchitecture:
    """What a stack's model is sized by: its catalogue entry, or the numbers it gives (exactly one of them)."""
    if catalog is not None and architecture is not None:
        raise ValueError("give either catalog or architecture, not both")
    if architecture is not None:
        return architecture
    if catalog is None:
        raise ValueError("give catalog (a catalogue key) or architecture (the model's numbers)")
    return get_model(catalog).architecture()
