"""A real API server accepts the chat UI's objects (and the entry point's second listener) from a prod render.

The same server-side dry run as ``test_apiserver_accepts_renders.py``, on a stack with ``chatUi`` on: strict
field validation, the project's CRDs (Gateway, HTTPRoute, SecurityPolicy, Certificate) and Pod Security
Admission ``restricted`` on the UI's namespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.localcluster.crds import cluster_crds
from tests.chat_ui.chat_ui_cases import stack_text
from tests.cluster.conftest import Cluster
from tests.cluster.renders import render

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]


def test_the_api_server_accepts_the_chat_ui_objects(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    # Offline, without the stack's passphrase: the secrets are placeholders, as in CI's renders.
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(stack_text())
    documents = render("prod", tmp_path / "render", root=tmp_path)
    chat = [document for _, document in documents if document["metadata"].get("namespace") == "slm-chat"]
    assert {document["kind"] for document in chat} >= {"Deployment", "NetworkPolicy", "PersistentVolumeClaim"}

    definitions = cluster_crds(cluster.bin_dir)
    cluster.apply(definitions)
    names = [crd["metadata"]["name"] for crd in definitions]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in names))
    cluster.apply([document for _, document in documents if document["kind"] == "Namespace"])
    others = [document for _, document in documents if document["kind"] != "Namespace"]
    result = cluster.apply(others, "--dry-run=server", check=False)

    refused = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("Warning:")]
    assert result.returncode == 0 and not refused, "\n".join(refused or [result.stderr])
    assert not [line for line in result.stderr.splitlines() if "would violate PodSecurity" in line]
    accepted = [line for line in result.stdout.splitlines() if line.endswith("serverside-applied (server dry run)")]
    assert len(accepted) == len(others), result.stdout
