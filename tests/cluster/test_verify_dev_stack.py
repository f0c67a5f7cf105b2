"""``slm-deploy verify --stack dev`` against the dev stack deployed on the test cluster (issue 16, part 6).

The objects come from the render, not from ``pulumi up``: ``slm-deploy render --stack dev`` writes the
Kubernetes objects the Pulumi program declares, and they are created for real with ``kubectl apply
--server-side`` (a reviewer reproduces this with the render and kubectl alone; test_pulumi_engine.py
runs the real engine on the ``local`` stack). What the render describes but is not a Kubernetes
object is left out: the kube-prometheus-stack Helm release (``_helm/``) is not installed, so nothing
here scrapes or alerts; its PrometheusRule and dashboards are applied against the project's CRDs
(infra/localcluster/crds.py). The model cache claim binds through the local cluster's default
StorageClass (the controller manager's host-path provisioner), never mounted. The Ollama image is
never pulled: kwok fakes the pods on its nodes, which become Ready without any container.

verify then runs as a user runs it, the CLI with ``KUBECONFIG`` and ``--context``: what needs only
the API (rollout and Ready replicas, the default-deny NetworkPolicy, the Service and its ready
endpoints) passes; what needs a running container (the testinfra suite through ``kubectl exec``, the
chat completion through ``kubectl port-forward``) is reported not applicable, naming the fake node;
the exit status is 0. Removing the default-deny NetworkPolicy turns the exit status to 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.localcluster.crds import cluster_crds
from infra.verify.runner import suite_check_names
from tests.cluster.conftest import CPU_NODE, Cluster
from tests.cluster.renders import SLM_DEPLOY, Rendered
from tests.conftest import ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

MODEL = "qwen3-micro"
NAMESPACE = "slm-qwen3-micro"
SMOKE = "chat completion through the Service"
API_CHECKS = ("deployment rolled out", "default-deny NetworkPolicy present", "service has ready endpoints")


@dataclass(frozen=True)
class Deployed:
    documents: list[dict[str, Any]]
    #: The kubeconfig context of the test cluster (what ``--context`` names).
    context: str


@dataclass(frozen=True)
class VerifyRun:
    returncode: int
    report: dict[str, Any]
    junit: ET.Element
    stderr: str

    def checks(self, subject: str | None = None) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.report["checks"] if subject is None or c["subject"] == subject}


def _wait_for_ready_endpoints(cluster: Cluster, service: str, timeout: float = 60) -> None:
    """As ``pulumi up`` does for a Service: wait until its EndpointSlices hold a ready endpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        slices = json.loads(
            cluster.kubectl(
                "get", "endpointslices", "-n", NAMESPACE, "-l", f"kubernetes.io/service-name={service}", "-o", "json"
            ).stdout
        )["items"]
        if any(e.get("conditions", {}).get("ready") for s in slices for e in s.get("endpoints") or []):
            return
        time.sleep(0.5)
    pytest.fail(f"Service {NAMESPACE}/{service} has no ready endpoint after {timeout:.0f} s")


@pytest.fixture(scope="module")
def deployed(cluster: Cluster, rendered: Callable[[str], Rendered]) -> Deployed:
    """Every Kubernetes object of the dev render, server-side applied for real, rolled out on the kwok nodes."""
    crds = cluster_crds(cluster.bin_dir)
    cluster.apply(crds)
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c['metadata']['name']}" for c in crds)
    )
    documents = [document for _, document in rendered("dev")]
    namespaces = [d for d in documents if d["kind"] == "Namespace"]
    others = [d for d in documents if d["kind"] != "Namespace"]
    cluster.apply(namespaces)
    cluster.apply(others)
    # The dev model scales to zero and starts with no replica; KEDA is not running here: one replica, as the HTTP
    # add-on's trigger asks for on the first request (docs/scale-to-zero.md).
    cluster.kubectl("scale", "-n", NAMESPACE, f"deployment/{MODEL}", "--replicas=1")
    cluster.kubectl("rollout", "status", "-n", NAMESPACE, f"deployment/{MODEL}", "--timeout=120s")
    _wait_for_ready_endpoints(cluster, MODEL)
    context = json.loads(cluster.kubeconfig.read_text())["current-context"]
    return Deployed(documents, context)


def _verify(cluster: Cluster, deployed: Deployed, out: Path) -> VerifyRun:
    """``slm-deploy verify --stack dev --context CTX`` with the test cluster's kubeconfig, as a user runs it."""
    junit = out / "verify.xml"
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        # kubectl (exec, port-forward) is the one built with the cluster, should verify need it.
        "PATH": f"{cluster.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECACHEDIR": str(cluster.workdir / "kubectl-cache"),
    }
    command = [
        str(SLM_DEPLOY), "verify", "--stack", "dev", "--root", str(ROOT),
        "--context", deployed.context, "--format", "json", "--junit", str(junit),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode in (0, 1), f"verify exited {result.returncode}:\n{result.stderr}{result.stdout}"
    return VerifyRun(result.returncode, json.loads(result.stdout), ET.parse(junit).getroot(), result.stderr)


def _model_pods(cluster: Cluster) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = json.loads(
        cluster.kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={MODEL}", "-o", "json"
        ).stdout
    )["items"]
    return [p for p in pods if "deletionTimestamp" not in p["metadata"]]


def test_the_dev_stack_is_deployed_from_its_render(cluster: Cluster, deployed: Deployed) -> None:
    """Every rendered object exists on the cluster, and the model's pod runs on the fake CPU node."""
    for document in deployed.documents:
        namespace = document["metadata"].get("namespace")
        where = ["-n", namespace] if namespace else []
        kind = document["kind"].lower()
        group = document["apiVersion"].split("/")[0] if "/" in document["apiVersion"] else ""
        resource = f"{kind}.{group}" if group else kind
        cluster.kubectl("get", resource, document["metadata"]["name"], *where, "-o", "name")
    pods = _model_pods(cluster)
    assert [p["spec"]["nodeName"] for p in pods] == [CPU_NODE]
    claim = json.loads(cluster.kubectl("get", "pvc", f"{MODEL}-cache", "-n", NAMESPACE, "-o", "json").stdout)
    assert claim["status"]["phase"] == "Bound"


def test_verify_passes_what_applies_and_says_what_cannot_run_on_fake_nodes(
    cluster: Cluster, deployed: Deployed, tmp_path: Path
) -> None:
    run = _verify(cluster, deployed, tmp_path)

    assert run.returncode == 0, json.dumps(run.report, indent=2)
    assert run.report["ok"] is True
    model = run.checks(MODEL)
    for name in API_CHECKS:
        assert model[name]["status"] == "passed", model[name]
    assert model["deployment rolled out"]["message"].startswith("1 replica(s) updated, ready and available")
    assert model["service has ready endpoints"]["message"] == "port 11434, 1 ready endpoint(s)"
    assert model["default-deny NetworkPolicy present"]["message"].startswith("default-deny denies all")
    assert model[SMOKE]["status"] == "not-applicable"
    assert model[SMOKE]["message"] == "not applicable: every Ready pod is on a fake node (kwok), no container answers"

    (pod,) = _model_pods(cluster)
    in_pod = run.checks(f"{MODEL}/{pod['metadata']['name']}")
    assert list(in_pod) == suite_check_names()
    for check in in_pod.values():
        assert check["status"] == "not-applicable"
        assert check["message"] == f"not applicable: fake node (kwok) {CPU_NODE}, no container runs"

    statuses = [c["status"] for c in run.report["checks"]]
    assert set(statuses) == {"passed", "not-applicable"}
    not_applicable = statuses.count("not-applicable")
    assert run.report["summary"] == f"3 passed, 0 failed, 0 skipped, {not_applicable} not applicable"
    assert (run.junit.get("tests"), run.junit.get("failures")) == (str(len(statuses)), "0")
    skipped = [case.find("skipped") for case in run.junit.iter("testcase") if case.find("skipped") is not None]
    assert len(skipped) == not_applicable


def test_verify_fails_when_the_default_deny_policy_is_gone(
    cluster: Cluster, deployed: Deployed, tmp_path: Path
) -> None:
    """The exit status still means something on fake nodes: a broken promise that needs no container fails."""
    policy = next(
        d for d in deployed.documents if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "default-deny"
    )
    cluster.kubectl("delete", "networkpolicy", "default-deny", "-n", NAMESPACE, "--wait=true")
    try:
        run = _verify(cluster, deployed, tmp_path)
    finally:
        cluster.apply([policy])

    assert run.returncode == 1
    assert [(c["subject"], c["name"]) for c in run.report["checks"] if c["status"] == "failed"] == [
        (MODEL, "default-deny NetworkPolicy present")
    ]
    assert run.junit.get("failures") == "1"
