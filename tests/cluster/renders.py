"""Rendering a reference stack through the CLI, and reading the manifests back, for the cluster tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

#: A render's Kubernetes objects, each with the file it was written to.
Rendered = list[tuple[Path, dict[str, Any]]]

#: The CLI as installed in the project's virtualenv (the interface the tests rely on is `render`).
SLM_DEPLOY = Path(sys.executable).parent / "slm-deploy"


def render(stack: str, out: Path, root: Path = ROOT) -> Rendered:
    """``slm-deploy render --stack STACK --out OUT``, then every Kubernetes object written, with its file."""
    command = [str(SLM_DEPLOY), "render", "--stack", stack, "--out", str(out), "--root", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"slm-deploy render --stack {stack} exited {result.returncode}:\n{result.stderr}{result.stdout}")
    documents: Rendered = []
    for path in sorted(out.rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".json") or path.name.startswith("."):
            continue
        with path.open(encoding="utf-8") as handle:
            # A render also describes what is not a Kubernetes object (Helm releases under _helm/, Azure
            # resources under _azure-native/): those have no apiVersion and are not for the API server.
            documents.extend(
                (path, document) for document in yaml.safe_load_all(handle) if document and "apiVersion" in document
            )
    if not documents:
        pytest.fail(f"slm-deploy render --stack {stack} wrote no manifest to {out}")
    return documents


def of_kind(documents: Rendered, kind: str) -> list[dict[str, Any]]:
    return [document for _, document in documents if document.get("kind") == kind]


def priority_classes(documents: Rendered) -> list[dict[str, Any]]:
    """The stack's PriorityClasses: a pod naming one is refused at creation (even a dry run) until it exists."""
    return of_kind(documents, "PriorityClass")
