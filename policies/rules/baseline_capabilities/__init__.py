"""SLM-K8S-021: no capability beyond the container runtime's default set (Pod Security Standards baseline).

Separate from ``drop-all-capabilities`` (restricted) so that waiving the restricted rule for a workload
that needs, say, CHOWN never lets SYS_ADMIN or NET_RAW through.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, items, pod_template
from ...lib.pss import BASELINE_CAPABILITIES
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        added = {str(x) for x in items(get(c.body, "securityContext", "capabilities", "add"))}
        beyond = sorted(added - BASELINE_CAPABILITIES)
        if beyond:
            yield (
                f"{c.label}: adds capabilities {', '.join(beyond)}, beyond the baseline default set "
                "(AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, "
                "SETPCAP, SETUID, SYS_CHROOT)"
            )


RULE = Rule(
    id="SLM-K8S-021",
    name="baseline-capabilities",
    title="Containers must not add capabilities beyond the runtime's default set",
    severity="critical",
    rationale=(
        "Capabilities such as SYS_ADMIN, NET_ADMIN, NET_RAW or SYS_PTRACE are a known path from a container to the "
        "node; the baseline profile refuses every capability outside the runtime's default set."
    ),
    remediation="Remove the extra entries from securityContext.capabilities.add (ideally add nothing and drop ALL).",
    controls={PSS: ("baseline: Capabilities",), NSA: ("Pod security enhancements",)},
    checkov=("CKV_K8S_39",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
