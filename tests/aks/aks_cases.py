"""AKS test support: stack-config cases, mocks that answer the AKS invokes, and cached mock-engine runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from infra.components.aks.platform import AksPlatform, deploy_aks
from infra.config.cluster import AksCluster
from infra.plan.engine import PlanRun, run_program
from infra.plan.model import RecordedResource


@contextmanager
def aks_mocks() -> Iterator[None]:
    """The plan's own mocks answer the AKS invokes and outputs (infra/plan/placeholders.py)."""
    yield


def aks_config(**overrides: Any) -> AksCluster:
    """A prod-grade AKS cluster with two GPU pools (A100 and T4); ``overrides`` replace top-level keys."""
    values: dict[str, Any] = {
        "mode": "aks",
        "name": "slm-prod",
        "resourceGroup": "rg-slm-prod",
        "location": "westeurope",
        "kubernetesVersion": "1.31",
        "apiServer": {"authorizedIpRanges": ["203.0.113.0/24"]},
        "adminGroupObjectIds": ["11111111-2222-3333-4444-555555555555"],
        "gpuPools": [
            {"name": "a100", "vmSize": "Standard_NC24ads_A100_v4", "minCount": 1, "maxCount": 3, "zones": ["1", "2"]},
            {"name": "t4", "vmSize": "Standard_NC64as_T4_v3", "minCount": 1, "maxCount": 2},
        ],
        "tags": {"team": "ml-platform"},
    }
    values.update(overrides)
    return AksCluster.model_validate(values)


_RUNS: dict[tuple[str, bool, bool], tuple[PlanRun, AksPlatform]] = {}


def planned(config: AksCluster, *, preview: bool, protect: bool, key: str) -> PlanRun:
    """``deploy_aks(config)`` under the mock engine, cached per (key, preview, protect)."""
    cache_key = (key, preview, protect)
    if cache_key not in _RUNS:
        holder: list[AksPlatform] = []
        with aks_mocks():
            run = run_program(lambda: holder.append(deploy_aks(config, protect=protect)), "test", preview=preview)
        _RUNS[cache_key] = (run, holder[0])
    return _RUNS[cache_key][0]


def of_type(resources: list[RecordedResource], type_: str) -> list[RecordedResource]:
    return [r for r in resources if r.type == type_]


def named(resources: list[RecordedResource], name: str) -> RecordedResource:
    matches = [r for r in resources if r.name == name]
    assert len(matches) == 1, f"expected one resource {name}, found {len(matches)}"
    return matches[0]
