"""What an existing cluster runs, so that ``slm-deploy cost`` can price the share of it a stack requests.

An AKS stack needs none of this: its pools, region and tier are in the stack. On a cluster made elsewhere
the stack knows only what its pods request; this optional section says where the nodes run and which VM
sizes they are. Nothing here changes what is deployed.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from infra.config.base import ConfigModel

#: Azure VM size names: ``Standard_`` then letters, digits and underscores.
_VM_SIZE = re.compile(r"Standard_[A-Za-z0-9_]{2,60}")
#: Azure region names as ARM spells them (``westeurope``).
_REGION = re.compile(r"[a-z][a-z0-9]{1,40}")


def _vm_size(value: str | None, key: str) -> str | None:
    from infra.config.azure_names import unknown_vm_size

    if value is not None and not _VM_SIZE.fullmatch(value):
        raise ValueError(f"{key} '{value}' is not an Azure VM size name (e.g. Standard_D4ds_v5)")
    problem = unknown_vm_size(value, "gpu" if key == "gpuVmSize" else "cpu") if value is not None else None
    if problem:
        raise ValueError(problem)
    return value


class CostBasis(ConfigModel):
    """Where the nodes of an existing cluster run and what they are: read by `slm-deploy cost` only."""

    region: str = Field(description="Azure region of the nodes (ARM name, e.g. `westeurope`): selects the prices.")
    cpu_vm_size: str | None = Field(
        None,
        description="VM size of the nodes CPU-only model servers run on (e.g. `Standard_D4ds_v5`); their share "
        "is left unpriced when unset.",
    )
    gpu_vm_size: str | None = Field(
        None,
        description="VM size of the GPU nodes, for GPU models that set no `gpu.vmSize` of their own; their share "
        "is left unpriced when neither is set.",
    )
    default_storage_class: str | None = Field(
        None,
        description="The cluster's default storage class, for caches that name none (`managed-csi` on AKS); "
        "such caches are left unpriced when unset.",
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        from infra.config.azure_names import unknown_region

        if not _REGION.fullmatch(value):
            raise ValueError(f"'{value}' is not an Azure region name (lowercase, e.g. westeurope)")
        problem = unknown_region(value)  # a public region; whether prices.yaml has it is `cost`'s business
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("cpu_vm_size")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        return _vm_size(value, "cpuVmSize")

    @field_validator("gpu_vm_size")
    @classmethod
    def _gpu(cls, value: str | None) -> str | None:
        return _vm_size(value, "gpuVmSize")
