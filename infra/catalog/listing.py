"""`slm-deploy models`: the catalogue as a table or JSON (camelCase keys), with, given a stack, which of its models
use each entry and whether they have a Hugging Face token configured."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from infra.catalog import CatalogueModel, load_catalogue

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

#: Bytes per weight of the checkpoints vLLM loads (bf16); the sizes shown are the weights alone.
_BF16_BYTES = 2


def _engines(entry: CatalogueModel) -> dict[str, Any]:
    ids = entry.engines
    gguf = {"repo": ids.llamacpp.repo, "file": ids.llamacpp.file} if ids.llamacpp else None
    return {"vllm": ids.vllm, "ollama": ids.ollama, "onnx": ids.onnx, "llamacpp": gguf}


def catalogue_rows(config: StackConfig | None = None) -> list[dict[str, Any]]:
    """One mapping per catalogue model (JSON-ready, camelCase), sorted by key."""
    rows = []
    for key, entry in sorted(load_catalogue().items()):
        row: dict[str, Any] = {
            "key": key,
            "displayName": entry.display_name,
            "family": entry.family,
            "licence": entry.licence,
            "gated": entry.gated,
            "gatedRepositories": sorted(entry.gated_repositories()),
            "engines": _engines(entry),
            "paramsBillion": entry.params_billion,
            "tier": entry.tier,
            "contextLength": entry.context_length,
            "weightsGbBf16": round(entry.params_billion * _BF16_BYTES, 1),
        }
        if config is not None:
            row["stackModels"] = [
                {"name": model.name, "engine": model.engine, "tokenConfigured": model.hf_token_secret is not None}
                for model in config.models
                if model.catalog == key
            ]
        rows.append(row)
    return rows


def render_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"models": rows}, indent=2, sort_keys=True) + "\n"


def render_text(rows: list[dict[str, Any]], with_stack: bool) -> str:
    """A plain table (one line per model), then the engine ids; with a stack, its models per entry."""
    header = ["key", "name", "licence", "gated", "params", "weights bf16", "engines"]
    if with_stack:
        header.append("in the stack (token)")
    lines = [header]
    for row in rows:
        engines = ", ".join(name for name, value in row["engines"].items() if value)
        line = [
            row["key"],
            row["displayName"],
            row["licence"],
            "yes" if row["gated"] else "no",
            f"{row['paramsBillion']:g}B",
            f"{row['weightsGbBf16']:g} GB",
            engines,
        ]
        if with_stack:
            used = [f"{m['name']} ({'yes' if m['tokenConfigured'] else 'no'})" for m in row["stackModels"]]
            line.append(", ".join(used) or "-")
        lines.append(line)
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    table = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    ids = ["", "Engine ids (gated: downloading the model's own repositories needs hfTokenSecret):"]
    for row in rows:
        engines = row["engines"]
        gguf = engines["llamacpp"]
        parts = [f"vllm {engines['vllm']}"]
        parts += [f"{name} {engines[name]}" for name in ("ollama", "onnx") if engines[name]]
        if gguf:
            parts.append(f"llamacpp {gguf['repo']}/{gguf['file']}")
        ids.append(f"  {row['key']}: {'; '.join(parts)}")
    return "\n".join(table + ids) + "\n"
