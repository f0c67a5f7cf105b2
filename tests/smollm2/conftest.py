"""The session's converted SmolLM2 and the project's ONNX server serving it (helpers: smollm2_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.onnx_server.onnx_server_helpers import RunningServer
from tests.smollm2.smollm2_helpers import Converted, Planned, converted, local_env, planned

#: Loading the model and reserving its KV memory (4 x 2048 tokens) takes a few seconds; 2 busy cores are slower.
START_TIMEOUT = 180


@pytest.fixture(scope="session")
def smollm2() -> Converted:
    return converted()


@pytest.fixture(scope="session")
def plan() -> Planned:
    return planned()


@pytest.fixture(scope="session")
def onnx_server(smollm2: Converted, plan: Planned, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("smollm2-onnx-server") / "server.log"
    env = local_env(plan.server_env, smollm2.model)
    env["HOME"] = str(log.parent)
    server = RunningServer(env, log)
    try:
        server.wait_ready(timeout=START_TIMEOUT)
        yield server
    finally:
        server.stop()
