"""``slm-deploy size MODEL``: the memory breakdown of a catalogue model and where it fits, as a table or JSON.

Exit status: 0 the model fits (the chosen or the given VM size), 1 it does not fit, 2 bad input (an unknown
model or VM size, a context beyond the model's) — one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from infra.catalog import CatalogueModel, UnknownModelError, get_model
from infra.sizing.core import ModelDoesNotFitError, SizingInputError, SizingResult, size_model
from infra.sizing.vm_sizes import UnknownVmSizeError


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def size_command(
    model: str,
    precision: str,
    context: int | None,
    concurrency: int,
    vm_size: str | None,
    output_format: str,
) -> int:
    """Print the sizing of catalogue model ``model``; return the exit status."""
    if output_format not in ("text", "json"):
        _error(f"unknown format '{output_format}' (expected text, json)")
        return 2
    try:
        entry = get_model(model)
    except UnknownModelError as error:
        _error(str(error))
        return 2
    failure: str | None = None
    try:
        result = size_model(
            entry.architecture(),
            precision,  # type: ignore[arg-type]  # checked by size_model
            context,
            concurrency,
            vm_size=vm_size,
            model_name=entry.display_name,
        )
    except (SizingInputError, UnknownVmSizeError) as error:
        _error(f"{model}: {error}")
        return 2
    except ModelDoesNotFitError as error:
        result, failure = error.result, str(error)
    if output_format == "json":
        print(json.dumps(_as_json(entry, result, failure), indent=2))
    else:
        _print_text(entry, result, vm_size)
    if failure is not None:
        _error(failure)
        return 1
    return 0


def _as_json(entry: CatalogueModel, result: SizingResult, failure: str | None) -> dict[str, Any]:
    from infra.json_keys import camel_keys

    document: dict[str, Any] = camel_keys(
        {
            "key": entry.key,
            "tier": entry.tier,
            "paramsBillion": entry.params_billion,
            "fits": failure is None,
            "error": failure,
            **result.model_dump(mode="json"),
        }
    )
    return document


def _print_text(entry: CatalogueModel, result: SizingResult, vm_size: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(
        f"[bold]{entry.display_name}[/bold] ({entry.key}, {entry.tier}, {entry.params_billion:g}B parameters): "
        f"{result.precision}, context {result.context}, {result.concurrency} concurrent sequence(s), "
        f"gpu-memory-utilization {result.gpu_memory_utilization:g}"
    )
    parts = result.breakdown
    memory = Table(title="Memory of one replica (GB)", title_justify="left")
    memory.add_column("Component")
    memory.add_column("GB", justify="right")
    memory.add_column("How")
    memory.add_row("Weights", f"{parts.weights_gb:.2f}", f"{entry.params_billion:g}B x {result.precision}")
    memory.add_row(
        "KV cache",
        f"{parts.kv_cache_gb:.2f}",
        f"{result.kv_cache_bytes_per_token / 1024:g} KiB/token x {result.context} x {result.concurrency}",
    )
    memory.add_row("Overhead", f"{parts.overhead_gb:.2f}", "1 GB per GPU + 20% of weights (assumption)")
    memory.add_row("[bold]Total[/bold]", f"[bold]{parts.total_gb:.2f}[/bold]", "")
    memory.add_row("Per GPU", f"{parts.per_gpu_gb:.2f}", f"tensor parallelism {parts.tensor_parallel_size}")
    console.print(memory)
    fits = Table(title="Fits on (smallest first)", title_justify="left")
    for column, justify in (
        ("VM size", "left"),
        ("GPUs", "right"),
        ("GPU", "left"),
        ("TP", "right"),
        ("Needed/GPU", "right"),
        ("Available/GPU", "right"),
        ("Headroom", "right"),
        ("Fits", "left"),
    ):
        fits.add_column(column, justify=justify)  # type: ignore[arg-type]
    chosen = result.choice.vm_size if result.choice else None
    for fit in result.fits_on:
        mark = "yes" if fit.fits else "no"
        if fit.vm_size == chosen:
            mark += " (chosen)" if vm_size is None else " (given)"
        elif vm_size is not None and fit.vm_size.lower() == vm_size.lower():
            mark += " (given)"
        fits.add_row(
            fit.vm_size,
            str(fit.gpus_per_vm),
            f"{fit.gpu} {fit.gpu_memory_gb:g} GB",
            str(fit.tensor_parallel_size),
            f"{fit.needed_per_gpu_gb:.1f}",
            f"{fit.available_per_gpu_gb:.1f}",
            f"{fit.headroom_gb:+.1f}",
            mark,
        )
    console.print(fits)
    if result.choice is not None:
        console.print(f"VM size: [bold]{result.choice.vm_size}[/bold]")
        console.print(f"vLLM flags: {' '.join(result.vllm_flags)}")
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]")
