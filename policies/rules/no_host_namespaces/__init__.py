"""SLM-K8S-006: no host network, PID or IPC namespace."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, pod_template
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if get(pod.spec, field) is True:
            yield f"pod spec sets {field}: true"


RULE = Rule(
    id="SLM-K8S-006",
    name="no-host-namespaces",
    title="Pods must not share the host network, PID or IPC namespace",
    severity="critical",
    rationale="Host namespaces let a pod see and reach node processes, node-local services and other pods' traffic.",
    remediation="Remove hostNetwork, hostPID and hostIPC from the pod spec.",
    controls={PSS: ("baseline: Host Namespaces",), NSA: ("Pod security: non-root and unprivileged containers",)},
    checkov=("CKV_K8S_17", "CKV_K8S_18", "CKV_K8S_19"),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
