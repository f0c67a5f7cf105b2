"""The session's llama-servers (see llama_server_helpers.py: `conftest` is a name every test folder shares)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.components.model_server.api_keys import LINES_FILE, secret_data
from infra.config.loader import validate_stack_config
from infra.engines import engine_for
from tests.llamacpp.llama_server_helpers import (
    API_KEYS,
    KEYED_STACK,
    PlannedServer,
    RunningServer,
    free_port,
    local_argv,
    planned_server,
    tools,
    wait_healthy,
)


def serve(planned: PlannedServer, folder: Path, key_file: Path | None = None) -> Iterator[RunningServer]:
    """Start llama-server with the planned container's arguments and environment; stop it afterwards."""
    built = tools()
    port = free_port()
    argv = local_argv(planned.container, built["server"], built["model"], port, key_file)
    log = folder / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("LLAMA_ARG_")}
    env |= {item["name"]: item["value"] for item in planned.container.get("env", []) if "value" in item}
    env["HOME"] = str(folder)
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
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


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from serve(planned_server(), tmp_path_factory.mktemp("llama-server"))


@pytest.fixture(scope="session")
def keyed_llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The keyed test stack's server, reading a key file written as the plan's Secret holds it."""
    folder = tmp_path_factory.mktemp("keyed-llama-server")
    config = validate_stack_config(KEYED_STACK, "llamacpp-test")
    check = engine_for(config.models[0], config).api_key_file
    assert check is not None
    data = secret_data(json.dumps(API_KEYS), check)
    key_file = folder / LINES_FILE
    key_file.write_text(data[LINES_FILE], encoding="utf-8")
    key_file.chmod(0o440)
    yield from serve(planned_server(KEYED_STACK), folder, key_file)
