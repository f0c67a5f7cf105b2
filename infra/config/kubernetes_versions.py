"""Whether a stack's Kubernetes version is inside AKS's support window (a warning, never an error).

The window comes from the dated calendar in ``infra/catalog/kubernetes_versions.yaml`` (the AKS release
calendar, with its source and the day it was read). A version outside it still validates and renders: the
schemas of every minor kubernetes-validate ships are kept; the warning says what to move to.
"""

from __future__ import annotations

import datetime

from infra.catalog.kubernetes_versions import SupportStatus, load_calendar, support_status
from infra.config.base import KeyPath
from infra.config.cluster import AksCluster, ExistingCluster
from infra.config.stack_warnings import ConfigWarning

#: Where the calendar is kept (repository path, shown in messages).
CALENDAR_FILE = "infra/catalog/kubernetes_versions.yaml"


def kubernetes_version_warnings(
    stack_version: str, cluster: ExistingCluster | AksCluster, day: datetime.date
) -> list[ConfigWarning]:
    """A warning when the version the stack runs is not in AKS standard support on ``day``.

    In aks mode the key is ``cluster.kubernetesVersion`` (what AKS runs; the stack's ``kubernetesVersion``
    has the same minor and moves with it); otherwise the stack's ``kubernetesVersion``.
    """
    aks = isinstance(cluster, AksCluster)
    path: KeyPath = ("cluster", "kubernetesVersion") if aks else ("kubernetesVersion",)
    version = cluster.kubernetes_version if isinstance(cluster, AksCluster) else stack_version
    status = support_status(version, day)
    if status.in_window:
        return []
    also = " (and kubernetesVersion with it)" if aks else ""
    calendar = load_calendar()
    choices = [f"{m} (until {calendar.versions[m].end_of_support.isoformat()})" for m in status.supported]
    move = f"move to a minor in support{also}: {', '.join(choices) or 'none listed'}"
    return [ConfigWarning(path, f"{_where(status)}; {move} ({_source()})")]


def _where(status: SupportStatus) -> str:
    minor, support = status.minor, status.support
    if status.phase == "unlisted-older":
        oldest = load_calendar().minors()[0]
        return f"Kubernetes {minor} is older than every minor of the AKS release calendar (oldest: {oldest})"
    if status.phase == "unlisted-newer":
        newest = load_calendar().minors()[-1]
        return f"Kubernetes {minor} is not in the AKS release calendar yet (newest: {newest})"
    assert support is not None
    if status.phase == "not-ga":
        return f"Kubernetes {minor} is not generally available on AKS before {support.ga.isoformat()}"
    ended = f"AKS standard support for Kubernetes {minor} ended on {support.end_of_support.isoformat()}"
    if status.phase == "lts-only":
        assert support.lts_end is not None
        return (
            f"{ended}; only AKS long-term support (Premium tier, support plan AKSLongTermSupport) runs until "
            f"{support.lts_end.isoformat()}"
        )
    if support.lts_end is not None:
        return f"{ended} (long-term support on {support.lts_end.isoformat()})"
    return ended


def _source() -> str:
    calendar = load_calendar()
    return f"AKS release calendar as of {calendar.as_of.isoformat()}, {CALENDAR_FILE}"
