"""Helpers for AKS resources (pulumi-azure-native, engine property names)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .k8s import get, is_map, items

MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"

_GPU_SIZE = re.compile(r"^standard_n[cdv]", re.IGNORECASE)


def is_gpu_size(vm_size: Any) -> bool:
    return isinstance(vm_size, str) and bool(_GPU_SIZE.match(vm_size))


@dataclass(frozen=True)
class Pool:
    label: str
    body: Mapping[str, Any]


def pools(resource_type: str, props: Mapping[str, Any], name: str) -> Iterator[Pool]:
    """An AgentPool resource, or each inline ``agentPoolProfiles`` entry of a ManagedCluster."""
    if resource_type == AGENT_POOL:
        yield Pool(f"agent pool {get(props, 'agentPoolName', default=name)}", props)
    elif resource_type == MANAGED_CLUSTER:
        for index, profile in enumerate(items(get(props, "agentPoolProfiles"))):
            if is_map(profile):
                yield Pool(f"agentPoolProfiles[{get(profile, 'name', default=index)}]", profile)
