"""SLM-K8S-025: only the "safe" sysctls (Pod Security Standards baseline)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, items, pod_template
from ...lib.pss import SAFE_SYSCTLS
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for index, sysctl in enumerate(items(get(pod.spec, "securityContext", "sysctls"))):
        name = get(sysctl, "name", default=f"#{index}")
        if name not in SAFE_SYSCTLS:
            yield f"pod securityContext.sysctls sets {name}, which is not a safe (namespaced, isolated) sysctl"


RULE = Rule(
    id="SLM-K8S-025",
    name="safe-sysctls",
    title="Pods may only set safe sysctls",
    severity="high",
    rationale=(
        "Sysctls outside the safe subset are not isolated per pod: they can disable kernel protections or change "
        "the node for every other pod on it."
    ),
    remediation=(
        "Remove the sysctl from securityContext.sysctls; tune the node (AKS custom node configuration) instead."
    ),
    controls={PSS: ("baseline: Sysctls",), NSA: ("Pod security enhancements",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
