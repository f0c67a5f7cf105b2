"""The cluster a stack deploys to, as level files bind it.

A level file lists the clusters it may target in ``environment-binding``'s ``contexts`` (kubeconfig contexts)
and ``clusterIds`` (AKS cluster resource ids), glob patterns allowed. A stack whose target a stricter level
lists is judged at that level, whatever its name: the dev stack pointed at the prod cluster's context is a
prod deployment. Targets come from the stack's ``cluster`` section:

- ``mode: existing``: ``context`` (unset: the kubeconfig's current context, which no file can name);
- ``mode: aks``: ``/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerService/
  managedClusters/<name>``, the subscription from the stack file's ``azure-native:subscriptionId`` (``*`` when
  the stack file does not set it: the provider's environment chooses it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

#: The property names of ``environment-binding`` that hold a level's targets.
CONTEXTS = "contexts"
CLUSTER_IDS = "clusterIds"


@dataclass(frozen=True)
class Target:
    kind: Literal["context", "aks"]
    value: str

    def describe(self) -> str:
        return f"kubeconfig context {self.value}" if self.kind == "context" else f"AKS cluster {self.value}"


def aks_cluster_id(subscription: str | None, resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription or '*'}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.ContainerService/managedClusters/{name}"
    )


def stack_target(cluster: Mapping[str, Any] | None, subscription: str | None = None) -> Target | None:
    """The target of a stack's ``cluster`` section (camelCase, as the stack file writes it)."""
    cluster = cluster or {}
    if cluster.get("mode") == "aks":
        name, group = cluster.get("name"), cluster.get("resourceGroup")
        if isinstance(name, str) and isinstance(group, str):
            return Target("aks", aks_cluster_id(subscription, group, name))
        return None
    context = cluster.get("context")
    return Target("context", context) if isinstance(context, str) and context else None


def _id_matches(value: str, pattern: str) -> bool:
    # Azure resource ids compare case-insensitively; an unknown subscription ("*") matches any pattern's.
    value, pattern = value.casefold(), pattern.casefold()
    if fnmatchcase(value, pattern):
        return True
    head, _, rest = value.partition("/resourcegroups/")
    return head == "/subscriptions/*" and fnmatchcase(rest, pattern.partition("/resourcegroups/")[2] or "\0")


def listed(target: Target, contexts: Iterable[str], cluster_ids: Iterable[str]) -> str | None:
    """The entry of a level's lists that names ``target``, or ``None``."""
    if target.kind == "context":
        return next((p for p in contexts if fnmatchcase(target.value, p)), None)
    return next((p for p in cluster_ids if _id_matches(target.value, p)), None)
