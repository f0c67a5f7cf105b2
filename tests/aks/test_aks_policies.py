"""The repository's policy pack on the recorded AKS resources: the prod cluster passes every aks-* rule."""

from __future__ import annotations

import pytest
from aks_cases import aks_config, planned

from infra.plan.model import RecordedResource
from infra.policy.analyzer import run_policy_pack
from infra.policy.model import PolicyReport
from tests.conftest import ROOT

MODES = pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
AKS_RULES = (
    "aks-entra-id",
    "aks-api-server-access",
    "aks-workload-identity",
    "aks-network-policy",
    "aks-auto-upgrade",
    "aks-gpu-pool-taint",
    "aks-no-spot-gpu",
)


def prod_pack(resources: list[RecordedResource]) -> PolicyReport:
    return run_policy_pack(resources, ROOT / "policies/config/prod.json", {"environment": "prod", "waivers": []})


def aks_violations(report: PolicyReport) -> list[str]:
    return [
        f"{r.policy_name} on {r.resource_name}: {r.message}"
        for r in report.results
        if r.status == "violation" and r.policy_name.startswith("aks-")
    ]


@MODES
def test_prod_cluster_passes_every_aks_rule(preview: bool) -> None:
    run = planned(aks_config(), preview=preview, protect=True, key="prod")
    report = prod_pack(run.resources)
    assert aks_violations(report) == []
    passed = {(r.policy_name, r.resource_name) for r in report.results if r.status == "pass"}
    # Not vacuous: every AKS rule ran and passed on the cluster or on each GPU pool.
    for rule in AKS_RULES[:5]:
        assert (rule, "aks-cluster-cluster") in passed, rule
    for rule in AKS_RULES[5:]:
        for pool in ("a100", "t4"):
            assert (rule, f"aks-pool-{pool}-agent-pool") in passed, (rule, pool)
    # The cluster and the pools are protected, as protect-stateful-resources wants.
    protect = [r for r in report.results if r.policy_name == "protect-stateful-resources" and r.status == "violation"]
    assert protect == []


def test_a_spot_pool_fails_the_prod_pack() -> None:
    config = aks_config(
        gpuPools=[{"name": "t4spot", "vmSize": "Standard_NC4as_T4_v3", "minCount": 0, "maxCount": 2, "spot": True}]
    )
    run = planned(config, preview=False, protect=False, key="spot-for-pack")
    violations = aks_violations(prod_pack(run.resources))
    assert violations and all(v.startswith("aks-no-spot-gpu on aks-pool-t4spot-agent-pool") for v in violations)
