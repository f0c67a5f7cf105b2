"""Azure names a stack may use: the public regions, as ARM spells them (``westeurope``), and the VM sizes of the
project's inventory (``infra/sizing/vm_sizes.py``). Anything else is refused at its key, with the close names.
A region is one of these Whether a region has prices in ``infra/cost/prices.yaml`` is a separate question
(`slm-deploy cost` says "not priced"); validity does not depend on it.

Sources (2026): the region list of the Azure "Fabric region availability" page (learn.microsoft.com/fabric/admin/
region-availability, which lists every public region with Power BI), the availability-zone region table
(learn.microsoft.com/azure/reliability/availability-zones-region-support) and the Azure geographies page for the
restricted-access public regions (Australia Central 2, Brazil Southeast, Jio India, West Central US). Sovereign
clouds (US Gov, China) and EUAP canary regions are not public regions and are left out.
"""

from __future__ import annotations

import difflib

AZURE_PUBLIC_REGIONS: frozenset[str] = frozenset(
    {
        # Americas
        "brazilsouth", "brazilsoutheast", "canadacentral", "canadaeast", "centralus", "chilecentral", "eastus",
        "eastus2", "mexicocentral", "northcentralus", "southcentralus", "westcentralus", "westus", "westus2",
        "westus3",
        # Europe
        "austriaeast", "belgiumcentral", "denmarkeast", "francecentral", "francesouth", "germanynorth",
        "germanywestcentral", "italynorth", "northeurope", "norwayeast", "norwaywest", "polandcentral",
        "spaincentral", "swedencentral", "switzerlandnorth", "switzerlandwest", "uksouth", "ukwest", "westeurope",
        # Asia Pacific
        "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast", "centralindia", "eastasia",
        "indonesiacentral", "japaneast", "japanwest", "jioindiacentral", "jioindiawest", "koreacentral",
        "koreasouth", "malaysiawest", "newzealandnorth", "southeastasia", "southindia", "taiwannorth",
        "taiwannorthwest", "westindia",
        # Middle East and Africa
        "israelcentral", "qatarcentral", "southafricanorth", "southafricawest", "uaecentral", "uaenorth",
    }
)  # fmt: skip


def unknown_region(value: str) -> str | None:
    """Why ``value`` is not an Azure public region (with the close names), or None when it is one."""
    if value in AZURE_PUBLIC_REGIONS:
        return None
    if value.lower().replace(" ", "") in AZURE_PUBLIC_REGIONS:
        return f"'{value}' is written '{value.lower().replace(' ', '')}' (ARM names are lowercase, without spaces)"
    close = difflib.get_close_matches(value.lower(), sorted(AZURE_PUBLIC_REGIONS), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "e.g. westeurope, eastus2, swedencentral"
    return f"unknown Azure region '{value}' ({hint})"


def unknown_vm_size(value: str, kind: str = "any") -> str | None:
    """Why ``value`` is not a VM size of the inventory (``kind``: ``cpu``, ``gpu`` or ``any``), or None."""
    from infra.sizing.vm_sizes import CPU_VM_SIZES, VM_SIZES

    cpu, gpu = [size.name for size in CPU_VM_SIZES], [size.name for size in VM_SIZES]
    names = {"cpu": cpu, "gpu": gpu, "any": cpu + gpu}[kind]
    if value.lower() in {name.lower() for name in names}:
        return None
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.6)
    what = {"cpu": "CPU VM size", "gpu": "GPU VM size", "any": "VM size"}[kind]
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else f"known: {', '.join(names)}"
    return f"unknown {what} '{value}' ({hint}; the inventory is infra/sizing/vm_sizes.py)"
