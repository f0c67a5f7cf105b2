"""SLM-NET-001 (stack): every namespace that runs a workload has a default-deny NetworkPolicy.

Scope: *every* namespace in which the stack runs a workload (any resource with a pod template), not
only namespaces of pods labelled ``app.kubernetes.io/component: model-server``: a sidecar, a job or
a gateway next to a model server is as much a way in or out. The policy must select all pods
(``podSelector: {}``), list both ``Ingress`` and ``Egress`` in ``policyTypes`` and allow nothing
(no ``ingress``/``egress`` rules); other NetworkPolicies then open what is needed. The violation is
reported on each workload of a namespace without one, so a waiver names that workload.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.k8s import NETWORK_POLICY, WORKLOAD_TYPES, get, is_map, items, namespace_of
from ...lib.rule import AKS, NSA, Rule


def is_default_deny(props: Mapping[str, Any]) -> bool:
    spec = get(props, "spec", default={})
    selector = get(spec, "podSelector")
    if not is_map(selector):
        return False
    if items(get(selector, "matchExpressions")) or (get(selector, "matchLabels") or {}):
        return False
    types = {str(t) for t in items(get(spec, "policyTypes"))}
    if not {"Ingress", "Egress"} <= types:
        return False
    return not items(get(spec, "ingress")) and not items(get(spec, "egress"))


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    workloads = [r for r in args.resources if r.resource_type in WORKLOAD_TYPES]
    if not workloads:
        args.not_applicable("the stack runs no workloads")
    covered = {
        namespace_of(r.props) for r in args.resources if r.resource_type == NETWORK_POLICY and is_default_deny(r.props)
    }
    for workload in workloads:
        namespace = namespace_of(workload.props)
        if namespace not in covered:
            yield (
                workload.urn,
                f"namespace '{namespace}' of {workload.name} has no default-deny NetworkPolicy "
                "(podSelector: {}, policyTypes: [Ingress, Egress], no rules)",
            )


RULE = Rule(
    id="SLM-NET-001",
    name="default-deny-network-policy",
    title="Namespaces running workloads must have a default-deny ingress and egress NetworkPolicy",
    severity="high",
    rationale=(
        "Without a default deny every pod can reach every other pod and the internet; a compromised model server "
        "could exfiltrate data."
    ),
    remediation=(
        "Add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] in the namespace, then allow "
        "only what is needed."
    ),
    controls={NSA: ("Network separation and hardening: network policies",), AKS: ("NS-1: network segmentation",)},
    checkov=("CKV2_K8S_6",),
    kind="stack",
    resource_types=WORKLOAD_TYPES | {NETWORK_POLICY},
    check=check,
)
