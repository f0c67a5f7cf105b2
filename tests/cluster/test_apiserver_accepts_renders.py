"""A real Kubernetes API server accepts every object the reference stacks render.

The CRDs come from the project's own JSON schemas (infra/localcluster/crds.py says how and what that
proves). Namespaces are applied for real; every other object goes through server-side apply with
``--dry-run=server``: decoding with strict field validation, defaulting, validation and admission
(Pod Security Admission, quotas, ...) all run, nothing is stored.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from infra import gpu
from infra.localcluster.crds import cluster_crds
from tests.cluster.conftest import CPU_NODE, GPU_NODE, GPU_POOL, Cluster
from tests.cluster.renders import Rendered
from tests.conftest import REFERENCE_STACKS, ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]


def _pinned(name: str) -> str:
    for line in (ROOT / "tools" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in tools/versions.env")


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> list[str]:
    """The project's CRDs, installed for real and established."""
    definitions = cluster_crds(cluster.bin_dir)
    cluster.apply(definitions)
    names = [crd["metadata"]["name"] for crd in definitions]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in names))
    return names


def test_the_cluster_runs_the_pinned_kubernetes_with_fake_nodes(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == _pinned("KUBERNETES_VERSION")

    nodes = {
        node["metadata"]["name"]: node
        for node in json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    }
    assert set(nodes) >= {CPU_NODE, GPU_NODE}
    for node in nodes.values():
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]
    gpu_node = nodes[GPU_NODE]
    assert gpu_node["status"]["allocatable"][gpu.NVIDIA_GPU] == "1"
    assert gpu_node["metadata"]["labels"][gpu.POOL_LABEL] == GPU_POOL
    assert {(t["key"], t["effect"]) for t in gpu_node["spec"]["taints"]} >= {
        (gpu.GPU_TAINT_KEY, gpu.GPU_TAINT_EFFECT),
        (gpu.NVIDIA_GPU, "NoSchedule"),
    }


def test_the_project_crds_are_served(cluster: Cluster, crds: list[str]) -> None:
    served = json.loads(cluster.kubectl("get", "crd", "-o", "json").stdout)["items"]
    established = {
        crd["metadata"]["name"]
        for crd in served
        if any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    }
    assert set(crds) <= established


def test_the_published_crds_of_the_pinned_releases_are_served(cluster: Cluster, crds: list[str]) -> None:
    """Gateway API, Envoy Gateway and the InferencePool come from their releases (tools/versions.env), not from
    the project's schemas: renders meet the releases' own validation."""
    served = {c["metadata"]["name"]: c for c in json.loads(cluster.kubectl("get", "crd", "-o", "json").stdout)["items"]}
    bundles = {
        "httproutes.gateway.networking.k8s.io": ("gateway.networking.k8s.io", "GATEWAY_API_VERSION"),
        "referencegrants.gateway.networking.k8s.io": ("gateway.networking.k8s.io", "GATEWAY_API_VERSION"),
        "inferencepools.inference.networking.k8s.io": ("inference.networking.k8s.io", "INFERENCE_EXTENSION_VERSION"),
    }
    for name, (group, pin) in bundles.items():
        annotations = served[name]["metadata"].get("annotations") or {}
        assert annotations.get(f"{group}/bundle-version") == _pinned(pin), name
    assert "controller-gen.kubebuilder.io/version" in served["backendtrafficpolicies.gateway.envoyproxy.io"][
        "metadata"
    ].get("annotations", {})


def test_the_published_crds_apply_their_cel_rules(
    cluster: Cluster, crds: list[str], rendered: Callable[[str], Rendered]
) -> None:
    """The quotas render's token budgets pass Envoy Gateway's own CRD; the same policy with an Inline body that
    has no text is refused by its CEL rule, which the project's schema does not have."""
    documents = rendered("quotas")
    cluster.apply([document for _, document in documents if document["kind"] == "Namespace"])
    [budgets] = [d for _, d in documents if d["kind"] == "BackendTrafficPolicy"]
    assert cluster.apply([budgets], "--dry-run=server", check=False).returncode == 0
    broken = copy.deepcopy(budgets)
    del broken["spec"]["responseOverride"][0]["response"]["body"]["inline"]
    result = cluster.apply([broken], "--dry-run=server", check=False)
    assert result.returncode != 0 and "inline must be set for type Inline" in result.stderr, result.stderr


# The node auto-provisioning stack too (docs/node-auto-provisioning.md): cluster-scoped Karpenter NodePool and
# AKSNodeClass; and the quotas one (docs/quotas.md): AIGatewayRoute, AIServiceBackend, Backend, BackendTrafficPolicy,
# the rate limit's Redis. The canary stack is a reference stack (two revisions' objects, the weighted HTTPRoute).
@pytest.mark.parametrize("stack", [*REFERENCE_STACKS, "nap", "quotas"])
def test_the_api_server_accepts_every_rendered_object(
    cluster: Cluster, crds: list[str], rendered: Callable[[str], Rendered], stack: str
) -> None:
    documents = rendered(stack)
    namespaces = [document for _, document in documents if document["kind"] == "Namespace"]
    others = [(path, document) for path, document in documents if document["kind"] != "Namespace"]
    assert namespaces, "every stack renders its namespaces"

    cluster.apply(namespaces)
    result = cluster.apply([document for _, document in others], "--dry-run=server", check=False)

    refused = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("Warning:")]
    assert result.returncode == 0 and not refused, f"the API server refused objects of stack {stack}:\n" + "\n".join(
        refused or [result.stderr]
    )
    # The namespaces warn on the restricted profile: a workload whose pod template would be refused
    # comes back with a warning at apply time, before any pod exists.
    would_violate = [line for line in result.stderr.splitlines() if "would violate PodSecurity" in line]
    assert not would_violate, "\n".join(would_violate)
    accepted = [line for line in result.stdout.splitlines() if line.endswith("serverside-applied (server dry run)")]
    assert len(accepted) == len(others), result.stdout


@pytest.mark.parametrize("kind", ["Deployment", "ServiceMonitor", "HTTPRoute"])
def test_a_misspelled_field_is_refused(
    cluster: Cluster, crds: list[str], rendered: Callable[[str], Rendered], kind: str
) -> None:
    """The dry-run above checks fields strictly, for built-in kinds and for the project's CRDs alike."""
    documents = rendered("prod")
    cluster.apply([document for _, document in documents if document["kind"] == "Namespace"])
    original = next(document for _, document in documents if document["kind"] == kind)
    misspelled = copy.deepcopy(original)
    misspelled["spec"]["replicaz"] = 1

    result = cluster.apply([misspelled], "--dry-run=server", check=False)

    assert result.returncode != 0, f"a {kind} with spec.replicaz was accepted"
    # Server-side apply builds a typed patch from the schema: an undeclared field cannot be placed.
    assert ".spec.replicaz: field not declared in schema" in result.stderr, result.stderr
    assert cluster.apply([original], "--dry-run=server", check=False).returncode == 0
