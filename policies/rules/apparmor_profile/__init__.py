"""SLM-K8S-022: AppArmor stays on the runtime default or a node-local profile (Pod Security Standards baseline).

Two channels carry the profile and the standard restricts both: the ``appArmorProfile`` field of the pod's
and every container's security context, and the older per-container annotations
``container.apparmor.security.beta.kubernetes.io/<container>`` on the pod (template) metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, is_map, pod_template, security_contexts
from ...lib.pss import (
    APPARMOR_ANNOTATION_LOCALHOST,
    APPARMOR_ANNOTATION_PREFIX,
    APPARMOR_ANNOTATION_VALUES,
    APPARMOR_TYPES,
)
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for label, context in security_contexts(pod.spec):
        profile = get(context, "appArmorProfile", "type")
        if profile is not None and profile not in APPARMOR_TYPES:
            yield f"{label}: securityContext.appArmorProfile.type is {profile!r}; use RuntimeDefault or Localhost"
    annotations = get(pod.metadata, "annotations", default={})
    if not is_map(annotations):
        return
    for key in sorted(str(k) for k in annotations):
        if not key.startswith(APPARMOR_ANNOTATION_PREFIX):
            continue
        value = str(annotations[key])
        if value not in APPARMOR_ANNOTATION_VALUES and not value.startswith(APPARMOR_ANNOTATION_LOCALHOST):
            yield f"annotation {key} is {value!r}; use runtime/default or localhost/<profile>"


RULE = Rule(
    id="SLM-K8S-022",
    name="apparmor-profile",
    title="Pods must not disable or override the default AppArmor profile",
    severity="high",
    rationale=(
        "The runtime's default AppArmor profile blocks writes to /proc and /sys and mounts; Unconfined turns that "
        "mandatory access control off for the container."
    ),
    remediation=(
        "Leave appArmorProfile unset or use RuntimeDefault or Localhost; remove unconfined AppArmor annotations."
    ),
    controls={PSS: ("baseline: AppArmor",), NSA: ("Pod security enhancements",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
