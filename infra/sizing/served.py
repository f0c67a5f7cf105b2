"""Sizing of a configured model (a model's ``sizing:`` section) on the VM size it runs on."""

from __future__ import annotations

import functools

from infra.catalog import resolve_architecture
from infra.catalog.architecture import ModelArchitecture
from infra.config.model import ModelConfig
from infra.sizing.core import ModelDoesNotFitError, Precision, SizingInputError, SizingResult, size_model
from infra.sizing.vm_sizes import GpuVmSize


def size_for(model: ModelConfig, vm_size: str | GpuVmSize | None = None) -> SizingResult:
    """The sizing result of a model with ``sizing`` on ``vm_size`` (default: the model's own ``gpu.vmSize``), a VM
    size's name or the shape of one slice of a shared GPU (:mod:`infra.sizing.slices`).

    Cached: validation and the engine both ask.
    """
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
    arch: ModelArchitecture,
    precision: Precision,
    context: int | None,
    concurrency: int,
    utilization: float,
    vm_size: str | GpuVmSize | None,
    name: str,
) -> SizingResult:
    try:
        return size_model(arch, precision, context, concurrency, utilization, vm_size, model_name=name)
    except ModelDoesNotFitError as error:
        raise ValueError(str(error)) from None
    except (SizingInputError, LookupError) as error:
        raise ValueError(str(error).strip("'\"")) from None
