"""Rendered model servers, created for real, land where they should on the fake nodes.

The Deployment controller makes the pods (so Pod Security Admission of the namespace checks them as
a real rollout would), the real scheduler places them, and kwok plays the kubelet. The model cache
claim binds through the local cluster's default StorageClass (the controller manager's host-path
provisioner); nothing is ever mounted, since no container runs.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from infra.config import priority
from infra.config.quantity import EPHEMERAL_STORAGE_MARGIN, parse_quantity
from tests.cluster.conftest import CPU_NODE, GPU_NODE, Cluster
from tests.cluster.renders import Rendered, of_kind

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

#: The kinds a model server's pods need to exist before they can be scheduled.
NEEDED = ("PriorityClass", "Namespace", "ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment")


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
        if d["kind"] in NEEDED
        and (
            d["metadata"].get("namespace") == namespace
            or d["metadata"]["name"] == namespace
            # Cluster-scoped: the classes the pod template names.
            or d["kind"] == "PriorityClass"
        )
    ]
    objects.sort(key=lambda d: NEEDED.index(d["kind"]))
    if deployment["spec"]["replicas"] == 0:
        # A model that scales to zero starts with none; KEDA is not running here: one replica, as the HTTP add-on's
        # trigger asks for on the first request.
        woken = copy.deepcopy(deployment)
        woken["spec"]["replicas"] = 1
        objects = [woken if d is deployment else d for d in objects]
        deployment = woken
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
    # The Priority admission plugin resolved the serving class; the pods carry its value and preemption policy.
    assert {(pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) for pod in pods} == {
        (priority.SERVING.value, priority.SERVING.preemption_policy)
    }
    # The scheduler placed them by their disk too: the emptyDirs' size limits plus the margin.
    for pod in pods:
        server = pod["spec"]["containers"][0]["resources"]
        assert server["requests"]["ephemeral-storage"] == server["limits"]["ephemeral-storage"]
        assert parse_quantity(server["requests"]["ephemeral-storage"]) > parse_quantity(EPHEMERAL_STORAGE_MARGIN)


def test_the_priority_classes_order_system_above_serving_above_batch(
    cluster: Cluster, rendered: Callable[[str], Rendered]
) -> None:
    cluster.apply(of_kind(rendered("prod"), "PriorityClass"))
    served = {
        item["metadata"]["name"]: item
        for item in json.loads(cluster.kubectl("get", "priorityclasses", "-o", "json").stdout)["items"]
    }
    tiers = [served[tier.name] for tier in priority.TIERS]
    assert [t["value"] for t in tiers] == sorted((t["value"] for t in tiers), reverse=True)
    assert all(t["value"] < served["system-cluster-critical"]["value"] for t in tiers)
    assert [t["preemptionPolicy"] for t in tiers] == ["PreemptLowerPriority", "PreemptLowerPriority", "Never"]
    assert not any(t.get("globalDefault") for t in tiers)
