"""Fixtures for the ONNX server tests (helpers live in onnx_server_helpers.py: `conftest` is a shared name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from onnx_server_helpers import RunningServer


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[type[RunningServer]]:
    started: list[RunningServer] = []

    class Starter(RunningServer):
        def __init__(self, env: dict[str, str], log: Path | None = None) -> None:
            folder = tmp_path_factory.mktemp("onnx-server")
            super().__init__(env, log or folder / "server.log")
            started.append(self)

    yield Starter
    for server in started:
        server.stop()
