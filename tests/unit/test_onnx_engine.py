"""The onnx engine: this project's ONNX Runtime GenAI server, and the Job that prepares its model."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.config.loader import StackConfigError, validate_stack_config
from infra.plan.engine import run_program
from infra.plan.model import RecordedResource
from infra.platform import deploy
from tests.helpers import assert_renders_strictly_valid_and_passes_the_pack, one, pod_spec

SERVER = {"repository": "ghcr.io/example-org/slm-onnx-server", "tag": "0.1.0"}
PREPARE = {"repository": "ghcr.io/example-org/slm-onnx-prepare", "tag": "0.1.0"}
#: Where the organisation pushed the two images: in prod its level file must admit them (positive model).
ORG_REPOSITORIES = (SERVER["repository"], PREPARE["repository"])


def stack(environment: str = "dev", **onnx: Any) -> dict[str, Any]:
    model = {
        "name": "edge",
        "engine": "onnx",
        "catalog": "phi-4-mini-instruct",
        "image": SERVER,
        "onnx": {"prepare": {"source": "microsoft/Phi-4-mini-instruct", "precision": "int4", "image": PREPARE}, **onnx},
    }
    if environment == "prod":
        model |= {"replicas": 2, "cache": {"accessMode": "ReadWriteMany"}}
        model["image"] = {**SERVER, "digest": "sha256:" + "a" * 64}
        model["onnx"]["prepare"]["image"] = {**PREPARE, "digest": "sha256:" + "b" * 64}
    return {
        "environment": environment,
        # The model hub's proxy (a named range: open egress is a violation in prod).
        "network": {"modelDownload": "allow", "downloadCidrs": ["203.0.113.0/24"]},
        "models": [model],
    }


@pytest.fixture(params=[True, False], ids=["preview", "update"])
def resources(request: pytest.FixtureRequest) -> list[RecordedResource]:
    config = validate_stack_config(stack(), "test")
    return run_program(lambda: deploy(config), "test", request.param).resources


def test_server_container(resources: list[RecordedResource]) -> None:
    spec = pod_spec(one(resources, "Deployment", "edge-deployment"))
    (server,) = spec["containers"]
    assert server["image"] == "ghcr.io/example-org/slm-onnx-server:0.1.0"
    assert "command" not in server  # the image's entrypoint starts the server
    env = {e["name"]: e["value"] for e in server["env"]}
    assert env["SLM_ONNX_MODEL_PATH"] == "/models/onnx/edge"
    assert env["SLM_ONNX_EXECUTION_PROVIDER"] == "cpu"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert "nvidia.com/gpu" not in server["resources"]["limits"]
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in server["volumeMounts"]} == {"/models", "/tmp"}


def test_preparation_job_runs_before_the_server(resources: list[RecordedResource]) -> None:
    job = one(resources, "Job", "edge-prepare-job")
    deployment = one(resources, "Deployment", "edge-deployment")
    assert job.urn in deployment.dependencies
    template = job.inputs["spec"]["template"]
    # Not selected by the model's Service (no server name label), but by its egress policies (instance label).
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "model-preparation"
    assert template["metadata"]["labels"]["app.kubernetes.io/instance"] == "edge"
    convert = template["spec"]["containers"][0]
    assert convert["args"] == [
        "--source=/models/hf-source/edge",
        "--output=/models/onnx/edge",
        "--precision=int4",
        "--execution-provider=cpu",
    ]
    for container in (*template["spec"]["initContainers"], convert):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    dns = one(resources, "NetworkPolicy", "edge-network-allow-dns-egress")
    assert dns.inputs["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "edge"}}


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_autoscaled_server_still_waits_for_its_preparation_job(preview: bool) -> None:
    """Autoscaling adds ignore_changes to the Deployment's options; it must not drop the Job dependency."""
    config = stack()
    config["models"][0]["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 1}
    run = run_program(lambda: deploy(validate_stack_config(config, "test")), "test", preview)
    job = one(run.resources, "Job", "edge-prepare-job")
    deployment = one(run.resources, "Deployment", "edge-deployment")
    assert job.urn in deployment.dependencies
    assert "spec.replicas" in deployment.ignore_changes
    assert one(run.resources, "Namespace", "edge-namespace").urn in deployment.dependencies


def test_render_validates_and_prod_passes_the_pack() -> None:
    assert_renders_strictly_valid_and_passes_the_pack(stack("prod"), extra_repositories=ORG_REPOSITORIES)


def test_onnx_needs_its_image() -> None:
    config = stack()
    del config["models"][0]["image"]
    dockerfile = re.escape("templates/docker/onnx-server.Dockerfile.j2")
    with pytest.raises(StackConfigError, match=f"engine 'onnx' runs the server image built from {dockerfile}"):
        validate_stack_config(config, "test")


# --- a GGUF source (onnx.prepare.gguf) ----------------------------------------------------------------------

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_job(gguf: dict[str, Any], environment: str = "dev") -> dict[str, Any]:
    config = stack(environment)
    prepare = config["models"][0]["onnx"]["prepare"]
    del prepare["source"], prepare["precision"]  # precision auto, the default
    prepare["gguf"] = gguf
    run = run_program(lambda: deploy(validate_stack_config(config, "test")), "test", False)
    spec: dict[str, Any] = one(run.resources, "Job", "edge-prepare-job").inputs["spec"]["template"]["spec"]
    return spec


def test_a_gguf_from_a_repository_is_fetched_then_converted() -> None:
    spec = gguf_job({"file": GGUF_FILE, "repo": "example-org/SmolLM2-GGUF", "revision": "v1"})
    (fetch,) = spec["initContainers"]
    assert fetch["command"] == ["python", "-m", "slm_onnx_server.fetch_gguf"]
    assert fetch["args"] == [
        f"--file={GGUF_FILE}",
        "--dir=/models/gguf",
        "--skip-if=/models/onnx/edge",
        "--repo=example-org/SmolLM2-GGUF",
        "--revision=v1",
    ]
    (convert,) = spec["containers"]
    assert convert["args"] == [
        f"--source=/models/gguf/{GGUF_FILE}",
        "--output=/models/onnx/edge",
        "--precision=auto",
        "--execution-provider=cpu",
    ]


def test_a_gguf_from_a_url_is_checked_against_its_sha256() -> None:
    spec = gguf_job({"file": GGUF_FILE, "url": "https://example.org/m.gguf", "sha256": "c" * 64})
    (fetch,) = spec["initContainers"]
    assert fetch["args"][-2:] == ["--url=https://example.org/m.gguf", f"--sha256={'c' * 64}"]


def test_a_prefilled_gguf_is_only_converted() -> None:
    spec = gguf_job({"file": GGUF_FILE})
    assert not spec.get("initContainers")
    (convert,) = spec["containers"]
    assert convert["args"][0] == f"--source=/models/gguf/{GGUF_FILE}"


def test_a_gguf_render_validates_and_prod_passes_the_pack() -> None:
    config = stack("prod")
    prepare = config["models"][0]["onnx"]["prepare"]
    del prepare["source"]
    prepare["gguf"] = {"file": GGUF_FILE, "repo": "example-org/SmolLM2-GGUF"}
    assert_renders_strictly_valid_and_passes_the_pack(config, extra_repositories=ORG_REPOSITORIES)


@pytest.mark.parametrize("both", [True, False], ids=["both", "neither"])
def test_prepare_takes_one_source(both: bool) -> None:
    config = stack()
    prepare = config["models"][0]["onnx"]["prepare"]
    if both:
        prepare["gguf"] = {"file": GGUF_FILE}
    else:
        del prepare["source"]
    with pytest.raises(StackConfigError, match=r"give source .* or gguf .*, not both nor neither"):
        validate_stack_config(config, "test")
