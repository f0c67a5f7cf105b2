"""A real API server accepts a scaled-to-zero model routed through the gateway (docs/scale-to-zero.md).

The dev reference stack (its model scales to zero) with an entry point added: the HTTPRoute whose backend is the
KEDA HTTP add-on's interceptor in KEDA's namespace, the ReferenceGrant there, the HTTPScaledObject and the
ScaledObject with both triggers go through the same server-side dry run as ``test_apiserver_accepts_renders.py``,
against the project's CRDs (strict field validation).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.localcluster.crds import cluster_crds
from tests.cluster.conftest import Cluster
from tests.cluster.renders import render
from tests.conftest import ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

ENTRY = """  slm-deploy:entryPoint:
    enabled: true
    hostname: llm.example.internal
    exposure: internal
    tls: {secretName: llm-tls}
"""


def test_the_api_server_accepts_the_route_through_the_interceptor(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    dev = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(dev.replace("config:\n", f"config:\n{ENTRY}", 1))
    documents = [document for _, document in render("dev", tmp_path / "render", root=tmp_path)]
    kinds = {(d["kind"], d["metadata"].get("namespace")) for d in documents}
    assert {
        ("HTTPScaledObject", "slm-qwen3-micro"),
        ("ScaledObject", "slm-qwen3-micro"),
        ("HTTPRoute", "slm-qwen3-micro"),
        ("ReferenceGrant", "keda"),
    } <= kinds
    route = next(d for d in documents if d["kind"] == "HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"][0]["namespace"] == "keda"

    definitions = cluster_crds(cluster.bin_dir)
    cluster.apply(definitions)
    names = [crd["metadata"]["name"] for crd in definitions]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in names))
    # KEDA's namespace comes with its Helm release (not a rendered object): made here for the ReferenceGrant.
    keda = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"}}
    cluster.apply([keda, *(d for d in documents if d["kind"] == "Namespace")])
    others = [d for d in documents if d["kind"] != "Namespace"]
    result = cluster.apply(others, "--dry-run=server", check=False)

    refused = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("Warning:")]
    assert result.returncode == 0 and not refused, "\n".join(refused or [result.stderr])
    accepted = [line for line in result.stdout.splitlines() if line.endswith("serverside-applied (server dry run)")]
    assert len(accepted) == len(others), result.stdout
