"""SLM-K8S-023: no custom SELinux type, user or role (Pod Security Standards baseline)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, pod_template, security_contexts
from ...lib.pss import SELINUX_TYPES
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for label, context in security_contexts(pod.spec):
        options = get(context, "seLinuxOptions")
        if options is None:
            continue
        selinux_type = get(options, "type")
        if selinux_type is not None and selinux_type not in SELINUX_TYPES:
            yield (
                f"{label}: seLinuxOptions.type is {selinux_type!r}; allowed are container_t, container_init_t, "
                "container_kvm_t and container_engine_t"
            )
        for field in ("user", "role"):
            value = get(options, field)
            if value not in (None, ""):
                yield f"{label}: seLinuxOptions.{field} is set ({value!r}); a custom SELinux {field} is forbidden"


RULE = Rule(
    id="SLM-K8S-023",
    name="selinux-options",
    title="Pods must not set a custom SELinux type, user or role",
    severity="high",
    rationale=(
        "An SELinux type such as spc_t or unconfined_t, or a custom user or role, lifts the labelling that keeps a "
        "container away from the node's and other containers' files."
    ),
    remediation="Remove seLinuxOptions.user and .role; leave .type unset or use container_t (or another container_*).",
    controls={PSS: ("baseline: SELinux",), NSA: ("Pod security enhancements",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
