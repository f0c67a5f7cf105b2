"""A real Kubernetes control plane on 127.0.0.1 for the cluster tests.

The session fixture :func:`cluster` runs ``scripts/cluster-tools.sh`` (which builds the tools from Go
modules once, then finds them cached), then starts, each as a child process in a temporary folder:

* etcd (plain HTTP on a loopback port, data in the temporary folder);
* kube-apiserver, serving TLS with a CA and certificates made here with the ``openssl`` CLI,
  authenticating clients by certificate (the admin is in ``system:masters``), authorising with
  ``Node,RBAC``, with the default admission plugins (Pod Security Admission among them) and a
  service-account signing key;
* kube-controller-manager and kube-scheduler, with the admin kubeconfig;
* kwok, which plays the kubelet of the fake nodes created here: one CPU node and one GPU node
  labelled and tainted as an slm-deploy GPU pool (``infra.gpu``) with ``nvidia.com/gpu: 1``.

Everything is stopped by process at the end of the session. When a tool cannot be built or a
component does not start, the fixture calls :func:`tests.helpers.unavailable` (a skip here, a
failure in CI). ``SLM_CLUSTER_BIN_DIR`` names a folder that already holds the binaries (the build
is then not run).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import gpu
from infra.processes import stop_process
from tests.cluster.renders import Rendered, render
from tests.conftest import ROOT
from tests.helpers import unavailable

#: Binaries the fixture runs, all from the bin folder of scripts/cluster-tools.sh.
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
#: kwok's node and pod stages, collected by the build script from the kwok release it builds.
KWOK_STAGES = "kwok-stages.yaml"

#: The fake nodes. kwok manages only nodes with this annotation.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
CPU_NODE = "kwok-cpu-0"
GPU_NODE = "kwok-gpu-0"
#: The GPU pool the fake GPU node belongs to (the pool name the staging stack's models select).
GPU_POOL = "gpu"
#: The taint the NVIDIA device plugin (and AKS GPU node images) put on GPU nodes.
NVIDIA_TAINT = {"key": gpu.NVIDIA_GPU, "value": "present", "effect": "NoSchedule"}

BUILD_TIMEOUT = 3600  # a cold build of every tool takes tens of minutes on two cores
START_TIMEOUT = 90


def pytest_configure(config: pytest.Config) -> None:
    # Registered here so that the marker is known wherever these tests are collected; pyproject's
    # [tool.pytest.ini_options] markers may list it too.
    config.addinivalue_line(
        "markers", "cluster: runs against a real Kubernetes control plane built by scripts/cluster-tools.sh"
    )


@dataclass
class Cluster:
    """A running control plane: where its kubeconfig is, and a way to run kubectl against it."""

    workdir: Path
    bin_dir: Path
    kubeconfig: Path
    server: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with this cluster's kubeconfig; ``check`` fails the test on a non-zero exit."""
        command = [
            str(self.bin_dir / "kubectl"),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.workdir / 'kubectl-cache'}",  # not ~/.kube/cache: a new port every session
            *args,
        ]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, check=False)
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
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- tools -----------------------------------------------------------------------------------------


def _bin_dir() -> Path:
    given = os.environ.get("SLM_CLUSTER_BIN_DIR")
    if given:
        return Path(given)
    if shutil.which("go") is None:
        unavailable("Go is not installed: scripts/cluster-tools.sh builds the cluster tools with it")
    script = ROOT / "scripts" / "cluster-tools.sh"
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["bash", str(script), "cluster"], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        unavailable(f"scripts/cluster-tools.sh did not finish within {BUILD_TIMEOUT} s")
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-20:])
        unavailable(f"scripts/cluster-tools.sh exited {result.returncode}:\n{tail}")
    lines = result.stdout.strip().splitlines()
    if not lines:
        unavailable("scripts/cluster-tools.sh printed no bin directory")
    elapsed = time.monotonic() - started
    if elapsed > 30:
        sys.stderr.write(f"\ncluster tools built in {elapsed:.0f} s\n{result.stderr}")
    return Path(lines[-1])


def _check_tools(bin_dir: Path) -> None:
    missing = [tool for tool in (*TOOLS, KWOK_STAGES) if not (bin_dir / tool).exists()]
    if missing:
        unavailable(f"{', '.join(missing)} missing from {bin_dir} (scripts/cluster-tools.sh builds them)")
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed (Debian package 'openssl'): the fixture makes the cluster's certificates")


# --- certificates ----------------------------------------------------------------------------------

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr}")


def _make_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, an admin client certificate, a service-account key."""
    pki.mkdir()
    (pki / "openssl.cnf").write_text(_OPENSSL_CONFIG)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=slm-deploy-test-ca",
        "-config",
        "openssl.cnf",
        "-extensions",
        "ca",
        cwd=pki,
    )
    for name, subject, section in (
        ("apiserver", "/CN=kube-apiserver", "server"),
        ("admin", "/O=system:masters/CN=slm-deploy-test-admin", "client"),
    ):
        _openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-subj",
            subject,
            "-config",
            "openssl.cnf",
            "-extensions",
            section,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            cwd=pki,
        )
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key", cwd=pki)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")},
            }
        ],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        "current-context": "test",
    }
    path.write_text(json.dumps(config, indent=2))


# --- processes -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(cluster: Cluster, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
    log = (cluster.workdir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [str(cluster.bin_dir / name), *args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cluster.workdir,
    )
    log.close()
    cluster.processes[name] = process
    return process


def _wait_for(cluster: Cluster, name: str, ready: Any, timeout: float = START_TIMEOUT) -> None:
    """Poll ``ready()`` until it is true; unavailable() with the component's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    process = cluster.processes[name]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            unavailable(f"{name} exited with {process.returncode}:\n{cluster.log_tail(name)}")
        if ready():
            return
        time.sleep(0.25)
    unavailable(f"{name} was not ready within {timeout} s:\n{cluster.log_tail(name)}")


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _node(name: str, labels: dict[str, str], *, gpus: int = 0, taints: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "256Gi"}
    if gpus:
        capacity[gpu.NVIDIA_GPU] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": "1",
                "type": "kwok",
                **labels,
            },
        },
        "spec": {"taints": list(taints)},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def fake_nodes() -> list[dict[str, Any]]:
    """One CPU node, and one GPU node of the pool ``GPU_POOL`` as an slm-deploy GPU pool's nodes look."""
    pool_taint = {"key": gpu.GPU_TAINT_KEY, "value": gpu.GPU_TAINT_VALUE, "effect": gpu.GPU_TAINT_EFFECT}
    return [
        _node(CPU_NODE, {"node.kubernetes.io/instance-type": "Standard_D8s_v5"}),
        _node(
            GPU_NODE,
            {
                **gpu.pool_node_labels(GPU_POOL),
                "node.kubernetes.io/instance-type": "Standard_NV36ads_A10_v5",
                "accelerator": "nvidia",
            },
            gpus=1,
            taints=[pool_taint, NVIDIA_TAINT],
        ),
    ]


def _start_control_plane(cluster: Cluster, pki: Path, api_port: int) -> None:
    work = cluster.workdir
    etcd_port, etcd_peer, kwok_port = (_free_port() for _ in range(3))
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{etcd_peer}"
    _start(
        cluster,
        "etcd",
        [
            "--name=test",
            f"--data-dir={work / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=test={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
    )
    _wait_for(cluster, "etcd", lambda: _http_ok(f"{etcd_url}/health"))

    _start(
        cluster,
        "kube-apiserver",
        [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={work / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            # As on AKS: privileged containers are allowed by the API server, so what refuses them in a
            # restricted namespace is Pod Security Admission.
            "--allow-privileged=true",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            # Cluster IPs are only allocated, never reached: nothing here routes to them.
            "--service-cluster-ip-range=10.96.0.0/16",
            # The apiserver would publish 127.0.0.1 as the kubernetes Service's endpoint, which endpoint
            # validation refuses; no test needs that endpoint.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ],
    )
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    _wait_for(cluster, "kube-apiserver", lambda: _http_ok(f"{cluster.server}/readyz", context))

    common = [f"--kubeconfig={cluster.kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1"]
    _start(
        cluster,
        "kube-controller-manager",
        [
            *common,
            f"--secure-port={_free_port()}",
            f"--authentication-kubeconfig={cluster.kubeconfig}",
            f"--authorization-kubeconfig={cluster.kubeconfig}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            f"--cert-dir={work / 'controller-manager-certs'}",
        ],
    )
    _start(
        cluster,
        "kube-scheduler",
        [
            *common,
            f"--secure-port={_free_port()}",
            f"--authentication-kubeconfig={cluster.kubeconfig}",
            f"--authorization-kubeconfig={cluster.kubeconfig}",
        ],
    )
    _start(
        cluster,
        "kwok",
        [
            f"--kubeconfig={cluster.kubeconfig}",
            f"--config={cluster.bin_dir / KWOK_STAGES}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            f"--server-address=127.0.0.1:{kwok_port}",
            # Fake addresses written into node and pod status only; kwok sends nothing to them.
            "--node-ip=10.244.0.1",
            "--cidr=10.244.0.0/16",
        ],
    )
    # The controller manager creates every namespace's default ServiceAccount; wait for it to be at work.
    _wait_for(
        cluster,
        "kube-controller-manager",
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
    )
    for name in ("kube-scheduler", "kwok"):
        if cluster.processes[name].poll() is not None:
            unavailable(f"{name} exited with {cluster.processes[name].returncode}:\n{cluster.log_tail(name)}")

    cluster.apply(fake_nodes())
    _wait_for(
        cluster,
        "kwok",
        lambda: (
            cluster.kubectl(
                "wait", "--for=condition=Ready", f"node/{CPU_NODE}", f"node/{GPU_NODE}", "--timeout=2s", check=False
            ).returncode
            == 0
        ),
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    bin_dir = _bin_dir()
    _check_tools(bin_dir)
    workdir = tmp_path_factory.mktemp("cluster")
    pki = workdir / "pki"
    try:
        _make_pki(pki)
    except RuntimeError as error:
        unavailable(str(error))
    api_port = _free_port()
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = workdir / "kubeconfig"
    _write_kubeconfig(kubeconfig, server, pki)
    instance = Cluster(workdir=workdir, bin_dir=bin_dir, kubeconfig=kubeconfig, server=server)
    try:
        _start_control_plane(instance, pki, api_port)
        yield instance
    finally:
        # Stop in reverse order of start: kwok and the controllers before the API server, etcd last.
        for name in reversed(list(instance.processes)):
            stop_process(instance.processes[name])


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Rendered]:
    """Each reference stack rendered once per session (``slm-deploy render``), as (file, object) pairs."""
    cache: dict[str, Rendered] = {}

    def get(stack: str) -> Rendered:
        if stack not in cache:
            cache[stack] = render(stack, tmp_path_factory.mktemp(f"render-{stack}"))
        return cache[stack]

    return get
