"""SLM-K8S-020: no Windows HostProcess containers (Pod Security Standards baseline)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, pod_template, security_contexts
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for label, context in security_contexts(pod.spec):
        if get(context, "windowsOptions", "hostProcess") is True:
            yield f"{label} sets securityContext.windowsOptions.hostProcess: true"


RULE = Rule(
    id="SLM-K8S-020",
    name="no-host-process",
    title="Pods must not run Windows HostProcess containers",
    severity="critical",
    rationale="A HostProcess container runs directly on the Windows node with the node's privileges: no isolation.",
    remediation="Remove securityContext.windowsOptions.hostProcess (or set it to false) on the pod and containers.",
    controls={PSS: ("baseline: HostProcess",), NSA: ("Pod security: non-root and unprivileged containers",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
