"""SLM-K8S-003: drop ALL capabilities, add back at most NET_BIND_SERVICE."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, items, pod_template
from ...lib.rule import NSA, PSS, Rule

ALLOWED_ADD = frozenset({"NET_BIND_SERVICE"})


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        caps = get(c.body, "securityContext", "capabilities", default={})
        dropped = {str(x) for x in items(get(caps, "drop"))}
        if "ALL" not in dropped:
            yield f"{c.label}: securityContext.capabilities.drop must contain ALL"
        added = sorted({str(x) for x in items(get(caps, "add"))} - ALLOWED_ADD)
        if added:
            yield f"{c.label}: adds capabilities {', '.join(added)}; only NET_BIND_SERVICE may be added"


RULE = Rule(
    id="SLM-K8S-003",
    name="drop-all-capabilities",
    title="Containers must drop ALL capabilities and add only NET_BIND_SERVICE",
    severity="high",
    rationale="Default capabilities such as NET_RAW and SYS_CHROOT widen the kernel attack surface for no benefit.",
    remediation="Set securityContext.capabilities: {drop: [ALL]} and add nothing but NET_BIND_SERVICE.",
    controls={PSS: ("restricted: Capabilities", "baseline: Capabilities"), NSA: ("Pod security enhancements",)},
    checkov=("CKV_K8S_25", "CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_39"),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
