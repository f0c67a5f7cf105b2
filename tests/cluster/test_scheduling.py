"""Rendered model servers, created for real, land where they should on the fake nodes.

The Deployment controller makes the pods (so Pod Security Admission of the namespace checks them as
a real rollout would), the real scheduler places them, and kwok plays the kubelet. The model cache
claim binds through the local cluster's default StorageClass (the controller manager's host-path
provisioner); nothing is ever mounted, since no container runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.conftest import CPU_NODE, GPU_NODE, Cluster
from tests.cluster.renders import Rendered

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

#: The kinds a model server's pods need to exist before they can be scheduled.
NEEDED = ("Namespace", "ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment")


def _deploy_model(cluster: Cluster, documents: Rendered, model: str) -> dict[str, Any]:
    deployment = next(
        d
        for _, d in documents
        if d["kind"] == "Deployment" and d["metadata"]["labels"].get("app.kubernetes.io/instance") == model
    )
    namespace = deployment["metadata"]["namespace"]
    objects = [
        d
        for _, d in documents
        if d["kind"] in NEEDED and (d["metadata"].get("namespace") == namespace or d["metadata"]["name"] == namespace)
    ]
    objects.sort(key=lambda d: NEEDED.index(d["kind"]))
    cluster.apply(objects)
    return deployment


def _scheduled_pods(cluster: Cluster, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    namespace = deployment["metadata"]["namespace"]
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    # `kubectl wait` on a selector fails at once ("no matching resources") while the ReplicaSet controller has
    # not created the pods yet: wait for them to exist first.
    deadline = time.monotonic() + 90
    while not cluster.kubectl("get", "pods", "-l", selector, "-n", namespace, "-o", "name").stdout.strip():
        if time.monotonic() > deadline:
            pytest.fail(f"no pod of {namespace}/{deployment['metadata']['name']} was created within 90 s")
        time.sleep(0.5)
    cluster.kubectl("wait", "--for=condition=Ready", "pod", "-l", selector, "-n", namespace, "--timeout=90s")
    pods: list[dict[str, Any]] = json.loads(
        cluster.kubectl("get", "pods", "-l", selector, "-n", namespace, "-o", "json").stdout
    )["items"]
    assert len(pods) == deployment["spec"]["replicas"]
    return pods


@pytest.mark.parametrize(
    ("stack", "model", "node"),
    [("dev", "qwen3-micro", CPU_NODE), ("staging", "phi4-mini", GPU_NODE)],
    ids=["dev-cpu-model-on-the-cpu-node", "staging-gpu-model-on-the-gpu-pool"],
)
def test_the_model_server_is_scheduled_on_its_pool(
    cluster: Cluster, rendered: Callable[[str], Rendered], stack: str, model: str, node: str
) -> None:
    deployment = _deploy_model(cluster, rendered(stack), model)
    pods = _scheduled_pods(cluster, deployment)
    assert {pod["spec"]["nodeName"] for pod in pods} == {node}
