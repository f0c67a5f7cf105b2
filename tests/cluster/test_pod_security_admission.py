"""Pod Security Admission of a real API server, in a namespace labelled as slm-deploy labels them.

The hardened pod is the rendered dev Deployment's pod template: the API server admits it (server
dry-run, nothing stored) without a warning. Each pod-level violation of the ``restricted`` profile in
tests/cluster/pod_security_cases.py is refused by the real admission plugin, naming the check.
(The same table is meant for the policy pack: ``violating_deployment`` makes the Deployment it
should flag.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.pod_security_cases import VIOLATIONS, Violation, hardened_pod, violating_pod
from tests.cluster.renders import Rendered, of_kind, priority_classes

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

ENFORCE = "pod-security.kubernetes.io/enforce"


@pytest.fixture(scope="module")
def dev_pod(cluster: Cluster, rendered: Callable[[str], Rendered]) -> dict[str, Any]:
    """The dev model server's pod, with its namespace and service account created for real."""
    documents = rendered("dev")
    deployments = [
        d
        for d in of_kind(documents, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "model-server"
    ]
    assert deployments, "the dev stack renders a model server Deployment"
    deployment = deployments[0]
    namespace_name = deployment["metadata"]["namespace"]
    namespace = next(n for n in of_kind(documents, "Namespace") if n["metadata"]["name"] == namespace_name)
    assert namespace["metadata"]["labels"].get(ENFORCE) == "restricted"
    account_name = deployment["spec"]["template"]["spec"].get("serviceAccountName")
    accounts = [
        a
        for a in of_kind(documents, "ServiceAccount")
        if a["metadata"]["name"] == account_name and a["metadata"].get("namespace") == namespace_name
    ]
    cluster.apply([*priority_classes(documents), namespace, *accounts])
    return hardened_pod(deployment, "psa-hardened")


def _dry_run(cluster: Cluster, pod: dict[str, Any]) -> tuple[int, str]:
    result = cluster.apply([pod], "--dry-run=server", check=False)
    return result.returncode, result.stderr


def test_the_hardened_pod_is_admitted_without_warnings(cluster: Cluster, dev_pod: dict[str, Any]) -> None:
    returncode, stderr = _dry_run(cluster, dev_pod)
    assert returncode == 0, stderr
    assert "PodSecurity" not in stderr, stderr


@pytest.mark.parametrize("case", VIOLATIONS, ids=[case.id for case in VIOLATIONS])
def test_admission_refuses_the_violation(cluster: Cluster, dev_pod: dict[str, Any], case: Violation) -> None:
    pod = violating_pod(dev_pod, case)
    returncode, stderr = _dry_run(cluster, pod)
    assert returncode != 0, f"{case.id}: the API server admitted the pod"
    assert "forbidden" in stderr and 'violates PodSecurity "restricted:' in stderr, stderr
    assert f"{case.psa_check} (" in stderr, stderr


def test_a_namespace_without_the_labels_would_admit_the_same_pod(
    cluster: Cluster, dev_pod: dict[str, Any], tmp_path: Path
) -> None:
    """The refusals come from the namespace's labels, not from something else about the pods."""
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "psa-unlabelled"}}])
    pod = violating_pod(dev_pod, VIOLATIONS[0])
    pod["metadata"]["namespace"] = "psa-unlabelled"
    pod["spec"].pop("serviceAccountName", None)
    returncode, stderr = _dry_run(cluster, pod)
    assert returncode == 0, stderr
