"""A real Kubernetes control plane on 127.0.0.1 for the cluster tests, started as users start it.

The session fixture :func:`cluster` runs ``bash scripts/local-cluster.sh start`` (which builds the
tools with ``scripts/cluster-tools.sh`` once, then finds them cached, and runs
:mod:`infra.localcluster`) with its state in a temporary folder, reads the kubeconfig from the
``export KUBECONFIG=...`` line it ends with, and runs ``bash scripts/local-cluster.sh stop`` at the
end of the session. What it starts: etcd, kube-apiserver (TLS, client certificates, ``Node,RBAC``,
Pod Security Admission), kube-controller-manager (with its host-path provisioner), kube-scheduler and
kwok playing one CPU node and one GPU node labelled and tainted as an slm-deploy GPU pool, with the
project's CRDs and a default StorageClass installed. When it cannot start, the fixture calls
:func:`tests.helpers.unavailable` (a skip here, a failure in CI). ``SLM_CLUSTER_BIN_DIR`` names a
folder that already holds the binaries (the build is then not run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.localcluster.controlplane import CONTEXT, CPU_NODE, GPU_NODE, GPU_POOL, LocalCluster
from tests.cluster.pulumi_engine import Pulumi
from tests.cluster.renders import Rendered, render
from tests.conftest import ROOT
from tests.helpers import unavailable

__all__ = ["CONTEXT", "CPU_NODE", "GPU_NODE", "GPU_POOL", "Cluster"]

SCRIPT = ROOT / "scripts" / "local-cluster.sh"
BUILD_TIMEOUT = 3600  # a cold build of every tool takes tens of minutes on two cores


def pytest_configure(config: pytest.Config) -> None:
    # Registered here so that the marker is known wherever these tests are collected; pyproject's
    # [tool.pytest.ini_options] markers may list it too.
    config.addinivalue_line(
        "markers", "cluster: runs against a real Kubernetes control plane started by scripts/local-cluster.sh"
    )


@dataclass
class Cluster:
    """A running control plane: where its kubeconfig is, and a way to run kubectl against it."""

    local: LocalCluster

    @property
    def workdir(self) -> Path:
        return self.local.state

    @property
    def bin_dir(self) -> Path:
        return self.local.bin_dir

    @property
    def kubeconfig(self) -> Path:
        return self.local.kubeconfig

    @property
    def server(self) -> str:
        return self.local.server()

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with this cluster's kubeconfig; ``check`` fails the test on a non-zero exit."""
        result = self.local.kubectl(*args, input=input, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
        return result

    def apply(
        self, documents: Sequence[dict[str, Any]], *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Server-side apply ``documents`` (a real apply unless ``extra`` has ``--dry-run=server``)."""
        text = yaml.safe_dump_all(list(documents), sort_keys=False)
        return self.kubectl(
            "apply", "--server-side", "--field-manager=slm-deploy-tests", "-f", "-", *extra, input=text, check=check
        )

    def log_tail(self, name: str, lines: int = 30) -> str:
        return self.local.log_tail(name, lines)


def local_cluster(command: str, state: Path, timeout: float = BUILD_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``bash scripts/local-cluster.sh COMMAND`` with its state in ``state``."""
    env = {**os.environ, "SLM_LOCAL_CLUSTER_DIR": str(state)}
    return subprocess.run(
        ["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _bin_dir() -> Path:
    given = os.environ.get("SLM_CLUSTER_BIN_DIR")
    if given:
        return Path(given)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "cluster-tools.sh"), "--print-bin-dir"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Path(result.stdout.strip())


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("local-cluster") / "state"
    started = time.monotonic()
    try:
        result = local_cluster("start", state)
    except subprocess.TimeoutExpired:
        unavailable(f"scripts/local-cluster.sh start did not finish within {BUILD_TIMEOUT} s")
    try:
        if result.returncode != 0:
            tail = "\n".join(result.stderr.splitlines()[-30:])
            unavailable(f"scripts/local-cluster.sh start exited {result.returncode}:\n{tail}")
        last = result.stdout.strip().splitlines()[-1]
        assert last == f"export KUBECONFIG={state / 'kubeconfig'}", result.stdout
        elapsed = time.monotonic() - started
        if elapsed > 60:
            sys.stderr.write(f"\nlocal cluster started in {elapsed:.0f} s (tools built)\n")
        yield Cluster(LocalCluster(state=state, bin_dir=_bin_dir()))
    finally:
        stopped = local_cluster("stop", state, timeout=120)
        assert stopped.returncode == 0, stopped.stderr


def built_tools(target: str) -> Path:
    """``scripts/cluster-tools.sh TARGET`` (a group or one tool; cached after the first build): the bin directory.

    A build that fails or does not finish calls :func:`tests.helpers.unavailable` (a failure in CI).
    """
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "cluster-tools.sh"), target],
            capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        unavailable(f"scripts/cluster-tools.sh {target} did not finish within {BUILD_TIMEOUT} s")
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-20:])
        unavailable(f"scripts/cluster-tools.sh {target} exited {result.returncode}:\n{tail}")
    if time.monotonic() - started > 60:
        sys.stderr.write(f"\n{target} built in {time.monotonic() - started:.0f} s\n")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def pulumi(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Pulumi:
    """``scripts/pulumi.sh`` against the session's cluster, its state in a temporary folder."""
    bin_dir = built_tools("pulumi")
    return Pulumi(state=tmp_path_factory.mktemp("pulumi"), bin_dir=bin_dir, kubeconfig=cluster.kubeconfig)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Rendered]:
    """Each reference stack rendered once per session (``slm-deploy render``), as (file, object) pairs."""
    cache: dict[str, Rendered] = {}

    def get(stack: str) -> Rendered:
        if stack not in cache:
            cache[stack] = render(stack, tmp_path_factory.mktemp(f"render-{stack}"))
        return cache[stack]

    return get
