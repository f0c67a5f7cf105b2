"""The environment the onnx engine renders for a keyed stack makes the real server check the stack's keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from onnx_server_helpers import RunningServer, require

require("onnxruntime_genai", "fastapi", "uvicorn", "prometheus_client", "httpx")

import httpx  # noqa: E402

from infra.components.model_server.api_keys import JSON_FILE, MOUNT_PATH, secret_data  # noqa: E402
from infra.config.loader import validate_stack_config  # noqa: E402
from infra.engines import engine_for  # noqa: E402
from infra.plan.engine import run_program  # noqa: E402
from infra.platform import deploy  # noqa: E402
from tests.helpers import keyed_entry_point, one, pod_spec  # noqa: E402

KEYS = {"team-a": "onnx-rendered-key-team-a-01", "ci": "onnx-rendered-key-ci-000002"}
STACK: dict[str, Any] = {
    "environment": "dev",
    **keyed_entry_point(KEYS),
    "models": [
        {
            "name": "edge",
            "engine": "onnx",
            "modelId": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "image": {"repository": "registry.example.com/slm-onnx-server", "tag": "0.3.0"},
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        }
    ],
}


@pytest.fixture(scope="module")
def server(start_server: type[RunningServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = validate_stack_config(STACK, "onnx-keys")
    run = run_program(lambda: deploy(config), "onnx-keys", False)
    (container,) = pod_spec(one(run.resources, "Deployment", "edge-deployment"))["containers"]
    # The variables that name the keys file, as rendered; their mount path maps to a local file written as the
    # model's Secret holds it.
    check = engine_for(config.models[0], config).api_key_file
    assert check is not None and check.path_env is not None
    rendered = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    assert rendered[check.path_env] == f"{MOUNT_PATH}/{JSON_FILE}"
    key_file = tmp_path_factory.mktemp("secret") / JSON_FILE
    key_file.write_text(secret_data(json.dumps(KEYS), check)[JSON_FILE], encoding="utf-8")
    running = start_server({check.path_env: str(key_file)})
    running.wait_ready()
    yield running


def get(server: RunningServer, path: str, key: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.get(f"{server.base}{path}", headers=headers, timeout=30.0).status_code


def test_without_a_key_the_api_refuses(server: RunningServer) -> None:
    assert get(server, "/v1/models") == 401
    assert get(server, "/v1/models", "not-a-configured-key-000") == 401


@pytest.mark.parametrize("client", sorted(KEYS))
def test_every_clients_key_is_accepted(server: RunningServer, client: str) -> None:
    assert get(server, "/v1/models", KEYS[client]) == 200


def test_probes_and_metrics_stay_open(server: RunningServer) -> None:
    assert get(server, "/health") == 200
    assert get(server, "/metrics") == 200
