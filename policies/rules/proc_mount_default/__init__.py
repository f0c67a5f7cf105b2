"""SLM-K8S-024: the default /proc masks stay in place (Pod Security Standards baseline)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, pod_template
from ...lib.pss import PROC_MOUNT_TYPES
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        proc_mount = get(c.body, "securityContext", "procMount")
        if proc_mount is not None and proc_mount not in PROC_MOUNT_TYPES:
            yield f"{c.label}: securityContext.procMount is {proc_mount!r}; only Default is allowed"


RULE = Rule(
    id="SLM-K8S-024",
    name="proc-mount-default",
    title="Containers must keep the Default /proc mount type",
    severity="high",
    rationale=(
        "procMount: Unmasked exposes the kernel interfaces under /proc that the runtime masks (sysrq-trigger, kcore, "
        "timer_list, ...)."
    ),
    remediation="Remove securityContext.procMount (or set it to Default).",
    controls={PSS: ("baseline: /proc Mount Type",), NSA: ("Pod security enhancements",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
