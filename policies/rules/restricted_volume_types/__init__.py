"""SLM-K8S-007: only the volume types Pod Security Standards restricted allows (no hostPath)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, is_map, items, pod_template
from ...lib.pss import RESTRICTED_VOLUME_SOURCES as ALLOWED
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for index, volume in enumerate(items(get(pod.spec, "volumes"))):
        if not is_map(volume):
            continue
        name = get(volume, "name", default=f"#{index}")
        for source in sorted(str(k) for k in volume if k != "name"):
            if source not in ALLOWED:
                yield f"volume '{name}' uses {source}, which restricted pods may not use"


RULE = Rule(
    id="SLM-K8S-007",
    name="restricted-volume-types",
    title="Pods may only use restricted volume types (no hostPath)",
    severity="high",
    rationale=(
        "hostPath and other node-bound volumes expose the node's file system, sockets and credentials to the pod."
    ),
    remediation=(
        "Use emptyDir, persistentVolumeClaim, configMap, secret, projected, csi, ephemeral, downwardAPI or image "
        "(an image volume, judged like a container image by image-volume-pinned and allowed-image-registries)."
    ),
    controls={
        PSS: ("restricted: Volume Types", "baseline: HostPath Volumes"),
        NSA: ("Pod security: immutable container file systems",),
    },
    checkov=("CKV_K8S_27",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
