"""SLM-K8S-019: no workloads in the default namespace."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, namespace_of
from ...lib.rule import NSA, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if namespace_of(args.props) == "default":
        if get(args.props, "metadata", "namespace") is None:
            yield "metadata.namespace is not set, so the workload lands in the default namespace"
        else:
            yield "the workload runs in the default namespace"


RULE = Rule(
    id="SLM-K8S-019",
    name="no-default-namespace",
    title="Workloads must not run in the default namespace",
    severity="medium",
    rationale="The default namespace has no Pod Security labels, quotas or network policies of ours.",
    remediation="Set metadata.namespace to the model's own namespace.",
    controls={NSA: ("Network separation and hardening: namespaces",)},
    checkov=("CKV_K8S_21",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
