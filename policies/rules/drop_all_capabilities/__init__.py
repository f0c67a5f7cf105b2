"""SLM-K8S-003: drop ALL capabilities, add back at most NET_BIND_SERVICE (Pod Security Standards restricted)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, is_windows, items, pod_template
from ...lib.pss import RESTRICTED_CAPABILITIES
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    if is_windows(pod.spec):
        # Linux-only control (v1.25+): the API forbids capabilities on a pod with spec.os.name: windows.
        return
    for c in containers(pod.spec):
        caps = get(c.body, "securityContext", "capabilities", default={})
        dropped = {str(x) for x in items(get(caps, "drop"))}
        if "ALL" not in dropped:
            yield f"{c.label}: securityContext.capabilities.drop must contain ALL"
        added = sorted({str(x) for x in items(get(caps, "add"))} - RESTRICTED_CAPABILITIES)
        if added:
            yield f"{c.label}: adds capabilities {', '.join(added)}; only NET_BIND_SERVICE may be added"


RULE = Rule(
    id="SLM-K8S-003",
    name="drop-all-capabilities",
    title="Containers must drop ALL capabilities and add only NET_BIND_SERVICE",
    severity="high",
    rationale="Default capabilities such as NET_RAW and SYS_CHROOT widen the kernel attack surface for no benefit.",
    remediation="Set securityContext.capabilities: {drop: [ALL]} and add nothing but NET_BIND_SERVICE.",
    controls={PSS: ("restricted: Capabilities",), NSA: ("Pod security enhancements",)},
    checkov=("CKV_K8S_25", "CKV_K8S_28", "CKV_K8S_37"),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
