"""A local model server for the runtime suite: the ONNX Runtime server when it can run here, else the stand-in.

Target selection (swap in the real server by making it importable with its runtime installed):

1. ``servers/onnx`` (``slm_onnx_server``) with ``onnxruntime_genai``, ``fastapi`` and ``uvicorn`` importable
   by this interpreter, serving the committed tiny model;
2. otherwise ``slm_standin_server.py`` next to this file (standard library only).

Either runs on 127.0.0.1 as an unprivileged user: the current user when it is not root; under root
(CI here) as ``nobody``, with an interpreter that user may execute, ``no_new_privs`` set and so no
capabilities — what the pod's security context gives the real server.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from infra.processes import stop_process
from infra.verify.expectations import Expectation
from tests.helpers import unavailable

ROOT = Path(__file__).resolve().parents[2]
STANDIN = Path(__file__).resolve().parent / "slm_standin_server.py"
ONNX_DIR = ROOT / "servers" / "onnx"
TINY_MODEL = ONNX_DIR / "tests_model" / "tiny-llama"
NOBODY = 65534
_PR_SET_NO_NEW_PRIVS = 38


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _no_new_privs() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def _identity() -> tuple[int, int] | None:
    """(uid, gid) to run as, or ``None`` to stay as the current (non-root) user."""
    return (NOBODY, NOBODY) if os.geteuid() == 0 else None


def _runs_as(
    python: str, identity: tuple[int, int] | None, code: str = "pass", env: dict[str, str] | None = None
) -> bool:
    kwargs: dict[str, object] = {}
    if identity is not None:
        kwargs = {"user": identity[0], "group": identity[1], "extra_groups": []}
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, timeout=60, env=env, check=False, **kwargs)  # type: ignore[call-overload]
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(done.returncode == 0)


def onnx_available() -> bool:
    needed = ("onnxruntime_genai", "fastapi", "uvicorn")
    return (ONNX_DIR / "slm_onnx_server").is_dir() and all(importlib.util.find_spec(m) for m in needed)


def require_onnx_server() -> None:
    """Skip without the ONNX Runtime server's dependencies; in CI, where they are installed, fail instead."""
    if not onnx_available():
        unavailable("the ONNX Runtime server is not installed (pip install -r servers/onnx/requirements.txt)")


@dataclass
class LocalServer:
    kind: str
    process: subprocess.Popen[bytes]
    port: int
    expectation: Expectation
    scratch: Path | None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _wait_ready(server: LocalServer, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.kind} server exited with {server.process.returncode}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.kind} server not ready after {timeout}s")


def _expectation(kind: str, pid: int, port: int, identity: tuple[int, int] | None, cache: Path, files: list[str],
                 model: str) -> Expectation:  # fmt: skip
    uid, gid = identity if identity is not None else (os.getuid(), os.getgid())
    return Expectation(
        model=model,
        api_model=model,
        namespace="local",
        deployment=model,
        service=model,
        container=kind,
        pid=pid,
        uid=uid,
        gid=gid,
        ports=[port],
        listen_scope="process",
        cache_path=str(cache),
        model_files=files,
        read_only_root_filesystem=True,
        no_new_privileges=True,
        drop_all_capabilities=True,
    )


def start_local_server(
    prefer_onnx: bool = True, token_delay: float = 0.0, fail_every: int = 0, unprivileged: bool = True
) -> LocalServer:
    """Start a server; ``unprivileged=False`` keeps the current user (enough for load tests)."""
    identity = _identity() if unprivileged else None
    kwargs: dict[str, object] = {"preexec_fn": _no_new_privs}
    if identity is not None:
        kwargs.update(user=identity[0], group=identity[1], extra_groups=[])
    port = free_port()
    if prefer_onnx and onnx_available():
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLM_ONNX_")},
            "PYTHONPATH": str(ONNX_DIR),
            "SLM_ONNX_MODEL_PATH": str(TINY_MODEL),
            "SLM_ONNX_SERVED_MODEL_NAME": "tiny-llama",
            "SLM_ONNX_HOST": "127.0.0.1",
            "SLM_ONNX_PORT": str(port),
            "SLM_ONNX_LOG_LEVEL": "warning",
        }
        if _runs_as(sys.executable, identity, "import slm_onnx_server", env):
            process = subprocess.Popen(  # type: ignore[call-overload]
                [sys.executable, "-m", "slm_onnx_server"], env=env, cwd="/", stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, **kwargs,
            )  # fmt: skip
            expectation = _expectation(
                "onnx", process.pid, port, identity, TINY_MODEL, ["genai_config.json", "model.onnx"], "tiny-llama"
            )
            server = LocalServer("onnx", process, port, expectation, None)
            _wait_ready(server)
            return server
    # The stand-in: any interpreter the unprivileged user may run, its "weights" in a readable folder.
    python = next((p for p in (sys.executable, "/usr/bin/python3") if _runs_as(p, identity)), None)
    if python is None:
        raise RuntimeError("no Python interpreter that an unprivileged user may execute")
    scratch = Path(tempfile.mkdtemp(prefix="slm-standin-"))
    scratch.chmod(0o755)
    (scratch / "model.bin").write_bytes(b"\0" * 1024)
    (scratch / "model.bin").chmod(0o644)
    # The checkout may sit in a home the unprivileged user cannot enter (mode 700): the script runs from here.
    script = Path(shutil.copy(STANDIN, scratch / STANDIN.name))
    script.chmod(0o644)
    command = [python, str(script), "--port", str(port), "--model", "standin", "--model-dir", str(scratch),
               "--token-delay", str(token_delay), "--fail-every", str(fail_every)]  # fmt: skip
    process = subprocess.Popen(command, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    expectation = _expectation("standin", process.pid, port, identity, scratch, ["model.bin"], "standin")
    server = LocalServer("standin", process, port, expectation, scratch)
    _wait_ready(server)
    return server
