"""SLM-K8S-027: model server containers declare ephemeral-storage requests and limits.

A model server writes to disk-backed emptyDirs (vLLM: ``/tmp`` and its home, 12 Gi together). Without an
ephemeral-storage request the scheduler does not count that disk when it places the pod, so a GPU node fills up
and the kubelet evicts pods under disk pressure, the model server among them; without a limit the server itself can
fill the node's disk. slm-deploy derives both from the emptyDirs' ``sizeLimit`` plus a margin for logs
(docs/scheduling.md). Every container and init container of a pod labelled ``app.kubernetes.io/component:
model-server`` is checked: the init containers share the pod's volumes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, is_model_server, pod_template
from ...lib.rule import NSA, SLM, Rule

RESOURCE = "ephemeral-storage"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None or not is_model_server(pod):
        args.not_applicable("not a model server")
        return
    for c in containers(pod.spec, ("initContainers", "containers")):
        missing = [kind for kind in ("requests", "limits") if get(c.body, "resources", kind, RESOURCE) in (None, "")]
        if missing:
            yield f"{c.label}: resources {' and '.join(f'{kind}.{RESOURCE}' for kind in missing)} not set"


RULE = Rule(
    id="SLM-K8S-027",
    name="model-server-ephemeral-storage",
    title="Model server containers must set ephemeral-storage requests and limits",
    severity="medium",
    rationale=(
        "Model servers fill disk-backed emptyDirs (caches, scratch space) of many GiB: without a request the "
        "scheduler ignores that disk and the node's disk pressure evicts pods; without a limit one server can fill "
        "the node's disk."
    ),
    remediation=(
        "Set resources.requests and resources.limits ephemeral-storage on every container of the model server, at "
        "least the sum of the pod's disk-backed emptyDir sizeLimits plus room for logs (slm-deploy derives them)."
    ),
    controls={NSA: ("Network separation and hardening: resource policies",), SLM: ("GPU scheduling",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
