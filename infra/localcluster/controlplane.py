"""Start, stop and inspect the local control plane, each component a process of its own on 127.0.0.1.

``start`` makes, in a state folder outside the repository:

* a CA, the API server's serving certificate, an admin client certificate (group ``system:masters``)
  and a service-account signing key, with the ``openssl`` CLI, and a kubeconfig using them;
* etcd (plain HTTP on a loopback port, data in the state folder);
* kube-apiserver (TLS, client certificates, ``Node,RBAC``, the default admission plugins with Pod
  Security Admission among them, privileged containers allowed as on AKS);
* kube-controller-manager with its host-path provisioner on, and kube-scheduler;
* kwok, the kubelet of the fake nodes: one CPU node and one GPU node labelled and tainted as an
  slm-deploy GPU pool (:mod:`infra.gpu`) with ``nvidia.com/gpu: 1``;

then installs what stacks rendered for an existing cluster expect to find there: the CRDs of the kinds
slm-deploy renders (:mod:`infra.localcluster.crds`), a default StorageClass that claims bind through
(the controller manager's host-path provisioner: a fresh volume for every claim, deleted with it, so a
claim never meets a volume a previous one left ``Released`` or ``Failed``), and the ``monitoring``
namespace where a Prometheus of one's own would run (stacks with ``monitoring.mode: existing`` put
their rules and dashboards there).

Each component is started in a session of its own so that it outlives the command that started it;
``processes.json`` records each one's pid and start time, and ``stop`` signals exactly those (a pid the
system has since given to another process is left alone). A new ``start`` after a ``stop`` begins from
an empty state folder: no object survives from one cluster to the next.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra import gpu
from infra.localcluster.crds import PUBLISHED_CRDS, cluster_crds

#: Binaries run from the bin folder of scripts/cluster-tools.sh.
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
#: kwok's node and pod stages, collected by the build script from the kwok release it builds.
KWOK_STAGES = "kwok-stages.yaml"
#: The components in the order they start (``stop`` goes the other way).
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

#: kwok manages only nodes with this annotation.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
CPU_NODE = "kwok-cpu-0"
GPU_NODE = "kwok-gpu-0"
#: The GPU pool the fake GPU node belongs to (the pool name GPU models select by default).
GPU_POOL = "gpu"
#: The taint the NVIDIA device plugin (and AKS GPU node images) put on GPU nodes.
NVIDIA_TAINT = {"key": gpu.NVIDIA_GPU, "value": "present", "effect": "NoSchedule"}
#: The kubeconfig's context (what ``slm-deploy verify --context`` names).
CONTEXT = "slm-deploy-local"
#: The default StorageClass, provisioned by the controller manager's host-path provisioner.
STORAGE_CLASS = "local-hostpath"
#: Where that provisioner makes its folders (fixed in Kubernetes: ``/tmp/hostpath_pv/<uid>``).
HOSTPATH_ROOT = Path("/tmp/hostpath_pv")
#: Namespaces a stack for an existing cluster expects to exist (``monitoring.mode: existing``).
NAMESPACES = ("monitoring",)

START_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0


class ClusterError(Exception):
    """The control plane could not be started or reached; the message says which component and why."""


@dataclass(frozen=True)
class LocalCluster:
    """A control plane's state folder and the tools that run it."""

    state: Path
    bin_dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    def server(self) -> str:
        config = json.loads(self.kubeconfig.read_text(encoding="utf-8"))
        return str(config["clusters"][0]["cluster"]["server"])

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """kubectl with this cluster's kubeconfig (never the user's); the exit status is the caller's to check."""
        command = [
            str(self.bin_dir / "kubectl"),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.state / 'kubectl-cache'}",  # not ~/.kube/cache: a new port every start
            *args,
        ]
        return subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, check=False)

    def must(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        """kubectl that must succeed: ClusterError with its output otherwise."""
        result = self.kubectl(*args, input=input, timeout=timeout)
        if result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def apply(self, documents: Sequence[dict[str, Any]]) -> None:
        """Server-side apply ``documents``."""
        text = yaml.safe_dump_all(list(documents), sort_keys=False)
        self.must("apply", "--server-side", "--field-manager=slm-deploy-local-cluster", "-f", "-", input=text)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.state / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- processes -------------------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); None once it has
    exited (gone, or a zombie its new parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _records_path(state: Path) -> Path:
    return state / "processes.json"


def _records(state: Path) -> list[dict[str, Any]]:
    path = _records_path(state)
    if not path.exists():
        return []
    records: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return records


def _alive(record: dict[str, Any]) -> bool:
    """The recorded process still runs (same pid and the same start time: not a reused pid)."""
    return _start_time(int(record["pid"])) == str(record["started"])


def _signal(record: dict[str, Any], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
        os.kill(int(record["pid"]), signum)


def _spawn(cluster: LocalCluster, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
    with (cluster.state / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [str(cluster.bin_dir / name), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cluster.state,
            start_new_session=True,  # outlives `start`; no terminal signal reaches it
        )
    records = _records(cluster.state)
    records.append({"name": name, "pid": process.pid, "started": _start_time(process.pid)})
    _records_path(cluster.state).write_text(json.dumps(records, indent=2), encoding="utf-8")
    return process


def _wait_for(cluster: LocalCluster, name: str, process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"{name} exited with {process.returncode}:\n{cluster.log_tail(name)}")
        if ready():
            return
        time.sleep(0.25)
    raise ClusterError(f"{name} was not ready within {START_TIMEOUT:.0f} s:\n{cluster.log_tail(name)}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


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

#: Certificates live as long as a development cluster might.
_CERT_DAYS = "30"


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _make_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, an admin client certificate, a service-account key."""
    pki.mkdir(mode=0o700)
    (pki / "openssl.cnf").write_text(_OPENSSL_CONFIG)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", _CERT_DAYS)
    common = ("-config", "openssl.cnf", "-extensions")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=slm-deploy-local-ca",
             *common, "ca", cwd=pki)  # fmt: skip
    for name, subject, section in (
        ("apiserver", "/CN=kube-apiserver", "server"),
        ("admin", "/O=system:masters/CN=slm-deploy-local-admin", "client"),
    ):
        _openssl("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", subject,
                 *common, section, "-CA", "ca.crt", "-CAkey", "ca.key", cwd=pki)  # fmt: skip
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key", cwd=pki)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [
            {
                "name": f"{CONTEXT}-admin",
                "user": {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": f"{CONTEXT}-admin"}}],
        "current-context": CONTEXT,
    }
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    path.chmod(0o600)


# --- what the cluster holds ------------------------------------------------------------------------


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


def storage_class() -> dict[str, Any]:
    """The default StorageClass: volumes from the controller manager's host-path provisioner."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def _install_cluster_objects(cluster: LocalCluster) -> None:
    crds = cluster_crds(cluster.bin_dir)
    cluster.apply(
        [
            *crds,
            storage_class(),
            *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in NAMESPACES),
        ]
    )
    cluster.must(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{crd['metadata']['name']}" for crd in crds)
    )


# --- start, stop, status ---------------------------------------------------------------------------


def _start_components(cluster: LocalCluster, api_port: int) -> None:
    state, pki = cluster.state, cluster.pki
    etcd_port, etcd_peer, kwok_port = (_free_port() for _ in range(3))
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{etcd_peer}"
    etcd = _spawn(
        cluster,
        "etcd",
        [
            "--name=local",
            f"--data-dir={state / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=local={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
    )
    _wait_for(cluster, "etcd", etcd, lambda: _http_ok(f"{etcd_url}/health"))

    server = f"https://127.0.0.1:{api_port}"
    apiserver = _spawn(
        cluster,
        "kube-apiserver",
        [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={state / 'apiserver-certs'}",
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
            # validation refuses; nothing here needs that endpoint.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ],
    )
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    _wait_for(cluster, "kube-apiserver", apiserver, lambda: _http_ok(f"{server}/readyz", context))

    kubeconfig = cluster.kubeconfig
    common = [f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1"]
    delegated = [f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}"]
    controller_manager = _spawn(
        cluster,
        "kube-controller-manager",
        [
            *common,
            *delegated,
            f"--secure-port={_free_port()}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            f"--cert-dir={state / 'controller-manager-certs'}",
            # Claims bind to folders it makes under /tmp/hostpath_pv and deletes with them (one machine only:
            # exactly this case). No pod is involved, so it works on kwok's nodes.
            "--enable-hostpath-provisioner=true",
        ],
    )
    scheduler = _spawn(cluster, "kube-scheduler", [*common, *delegated, f"--secure-port={_free_port()}"])
    kwok = _spawn(
        cluster,
        "kwok",
        [
            f"--kubeconfig={kubeconfig}",
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
        controller_manager,
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", "default").returncode == 0,
    )
    for name, process in (("kube-scheduler", scheduler), ("kwok", kwok)):
        if process.poll() is not None:
            raise ClusterError(f"{name} exited with {process.returncode}:\n{cluster.log_tail(name)}")
    cluster.apply(fake_nodes())
    _wait_for(
        cluster,
        "kwok",
        kwok,
        lambda: (
            cluster.kubectl(
                "wait", "--for=condition=Ready", f"node/{CPU_NODE}", f"node/{GPU_NODE}", "--timeout=2s"
            ).returncode
            == 0
        ),
    )


def missing_tools(bin_dir: Path) -> list[str]:
    missing = [tool for tool in (*TOOLS, KWOK_STAGES, PUBLISHED_CRDS) if not (bin_dir / tool).exists()]
    if shutil.which("openssl") is None:
        missing.append("openssl (Debian package 'openssl')")
    return missing


def running(state: Path) -> dict[str, bool]:
    """Each recorded component and whether it still runs."""
    return {record["name"]: _alive(record) for record in _records(state)}


def start(state: Path, bin_dir: Path) -> LocalCluster:
    """Start a new control plane in ``state`` (emptied first); stops what it started if a step fails."""
    missing = missing_tools(bin_dir)
    if missing:
        raise ClusterError(f"missing: {', '.join(missing)} (scripts/cluster-tools.sh builds the tools)")
    if any(running(state).values()):
        raise ClusterError(f"a control plane from {state} is running: stop it first")
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True, mode=0o700)
    cluster = LocalCluster(state=state, bin_dir=bin_dir)
    try:
        _make_pki(cluster.pki)
        api_port = _free_port()
        _write_kubeconfig(cluster.kubeconfig, f"https://127.0.0.1:{api_port}", cluster.pki)
        _start_components(cluster, api_port)
        _install_cluster_objects(cluster)
    except BaseException:
        stop(state)
        raise
    return cluster


def _provisioned_folders(cluster: LocalCluster) -> list[Path]:
    """Folders the host-path provisioner made for this cluster's volumes that still exist."""
    result = cluster.kubectl("get", "persistentvolumes", "-o", "json", timeout=20)
    if result.returncode != 0:
        return []
    folders = []
    for volume in json.loads(result.stdout).get("items", []):
        path = Path((volume["spec"].get("hostPath") or {}).get("path", "/"))
        if path.parent == HOSTPATH_ROOT and path.is_dir():
            folders.append(path)
    return folders


def stop(state: Path, bin_dir: Path | None = None) -> list[str]:
    """Stop the components ``start`` recorded in ``state``, last started first; the names stopped."""
    records = [record for record in _records(state) if _alive(record)]
    folders: list[Path] = []
    if bin_dir is not None and any(record["name"] == "kube-apiserver" for record in records):
        folders = _provisioned_folders(LocalCluster(state=state, bin_dir=bin_dir))
    stopped = []
    for record in reversed(records):
        _signal(record, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(record) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(record):
            _signal(record, signal.SIGKILL)
            while _alive(record):
                time.sleep(0.05)
        stopped.append(str(record["name"]))
    # Volumes still bound when the cluster stops would otherwise leave their folders behind.
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    if _records_path(state).exists():
        _records_path(state).unlink()
    return stopped
