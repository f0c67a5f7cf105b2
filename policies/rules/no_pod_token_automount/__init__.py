"""SLM-K8S-013: pods do not mount a service-account token."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, pod_template
from ...lib.rule import AKS, NSA, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    if get(pod.spec, "automountServiceAccountToken") is not False:
        yield "pod spec does not set automountServiceAccountToken: false"


RULE = Rule(
    id="SLM-K8S-013",
    name="no-pod-token-automount",
    title="Pods must not mount a service-account token",
    severity="medium",
    rationale=(
        "A model server does not call the Kubernetes API; a mounted token is a credential for an attacker to use."
    ),
    remediation="Set automountServiceAccountToken: false in the pod spec (workload identity uses a projected token).",
    controls={NSA: ("Protecting Pod service account tokens",), AKS: ("PA-7: least privilege",)},
    checkov=("CKV_K8S_38",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
