"""SLM-AVL-002 (stack): every Deployment/StatefulSet has a matching PodDisruptionBudget."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.k8s import PDB_TYPES, REPLICATED_TYPES, get, labels_of, namespace_of, pod_template, selector_matches
from ...lib.rule import SLM, Rule


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    workloads = [r for r in args.resources if r.resource_type in REPLICATED_TYPES]
    if not workloads:
        args.not_applicable("the stack has no Deployment or StatefulSet")
    budgets = [r for r in args.resources if r.resource_type in PDB_TYPES]
    for workload in workloads:
        namespace = namespace_of(workload.props)
        template = pod_template(workload.resource_type, workload.props)
        labels = labels_of(template.metadata) if template else {}
        matched = any(
            namespace_of(b.props) == namespace and selector_matches(get(b.props, "spec", "selector"), labels)
            for b in budgets
        )
        if not matched:
            yield (
                workload.urn,
                f"no PodDisruptionBudget in namespace '{namespace}' selects the pods of {workload.name}",
            )


RULE = Rule(
    id="SLM-AVL-002",
    name="pod-disruption-budget",
    title="Deployments and StatefulSets must have a PodDisruptionBudget",
    severity="medium",
    rationale="Without a PodDisruptionBudget a node drain during an AKS upgrade can evict every replica at once.",
    remediation=(
        "Add a PodDisruptionBudget (minAvailable or maxUnavailable) whose selector matches the pod template labels."
    ),
    controls={SLM: ("Availability: voluntary disruptions",)},
    kind="stack",
    resource_types=REPLICATED_TYPES | PDB_TYPES,
    check=check,
)
