"""SLM-AVL-003: replicas spread across availability zones."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import REPLICATED_TYPES, get, items, pod_template
from ...lib.rule import SLM, Rule

ZONE_KEY = "topology.kubernetes.io/zone"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    keys = {get(c, "topologyKey") for c in items(get(pod.spec, "topologySpreadConstraints"))}
    if ZONE_KEY not in keys:
        yield f"the pod template has no topologySpreadConstraints on {ZONE_KEY}"


RULE = Rule(
    id="SLM-AVL-003",
    name="zone-topology-spread",
    title="Replicas must be spread across availability zones",
    severity="low",
    rationale="Replicas packed into one zone go down together with it.",
    remediation=(
        f"Add a topologySpreadConstraint with topologyKey {ZONE_KEY} (whenUnsatisfiable: ScheduleAnyway for scarce "
        f"GPUs)."
    ),
    controls={SLM: ("Availability: zone redundancy",)},
    resource_types=REPLICATED_TYPES,
    check=check,
)
