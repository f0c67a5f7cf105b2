"""Helpers for the ONNX server tests: the committed tiny model and real server processes on 127.0.0.1.

The server runs as `python -m slm_onnx_server` (uvicorn) in a subprocess, on a free loopback port. Without
onnxruntime-genai the tests that need it skip, except under CI (CI set), where they fail: CI must install it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from infra.processes import stop_process
from tests.helpers import unavailable

ROOT = Path(__file__).resolve().parents[2]
SERVER_DIR = ROOT / "servers" / "onnx"
TINY_MODEL = SERVER_DIR / "tests_model" / "tiny-llama"
ANSWER = json.loads((TINY_MODEL / "answer.json").read_text())["answer"]
MODEL_NAME = "tiny-llama"

if str(SERVER_DIR) not in sys.path:
    sys.path.insert(0, str(SERVER_DIR))


def require(*modules: str) -> None:
    """Skip (or, under CI, fail) when a module the test needs is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    unavailable(
        f"the ONNX server's {', '.join(missing)} is not installed (pip install -r servers/onnx/requirements.txt)",
        module=True,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    """A server subprocess; `health_seen` lists the /health status codes observed while it started."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLM_ONNX_")},
            "PYTHONPATH": str(SERVER_DIR),
            "SLM_ONNX_MODEL_PATH": str(TINY_MODEL),
            "SLM_ONNX_SERVED_MODEL_NAME": MODEL_NAME,
            "SLM_ONNX_HOST": "127.0.0.1",
            "SLM_ONNX_PORT": str(self.port),
            "SLM_ONNX_LOG_LEVEL": "warning",
            **env,
        }
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slm_onnx_server"],
            env=full_env,
            cwd=str(log.parent),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.health_seen: list[int] = []

    def wait_ready(self, timeout: float = 30.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                status = httpx.get(f"{self.base}/health", timeout=2.0).status_code
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            self.health_seen.append(status)
            if status == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        stop_process(self.process)
        self._log_file.close()

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, keyed by `name{labels}` as printed (labels in exposition order)."""
        import httpx

        text = httpx.get(f"{self.base}/metrics", timeout=5.0).text
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples


def sample(samples: dict[str, float], name: str, **labels: str) -> float:
    """One sample by name and labels, whatever order the labels are printed in."""
    for key, value in samples.items():
        match = re.fullmatch(r"([^{]+)(?:\{(.*)\})?", key)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return value
    raise KeyError(f"{name}{labels} not in /metrics")
