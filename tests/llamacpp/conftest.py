"""The session's llama-server (see llama_server_helpers.py: `conftest` is a name every test folder shares)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.llamacpp.llama_server_helpers import (
    RunningServer,
    free_port,
    local_argv,
    planned_server,
    tools,
    wait_healthy,
)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    built = tools()
    planned = planned_server()
    port = free_port()
    argv = local_argv(planned.container, built["server"], built["model"], port)
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("LLAMA_ARG_")}
    env |= {item["name"]: item["value"] for item in planned.container.get("env", []) if "value" in item}
    env["HOME"] = str(log.parent)
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process, log)
        yield RunningServer(base_url=base_url, argv=argv, planned=planned, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
