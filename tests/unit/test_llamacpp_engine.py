"""The llamacpp engine: llama.cpp's llama-server serving a GGUF file from the model cache."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config.loader import StackConfigError, validate_stack_config
from infra.engines.llamacpp import LLAMACPP_BUILD, LLAMACPP_IMAGE
from infra.monitoring.metrics import ENGINE_METRICS
from infra.plan.engine import run_program
from infra.plan.model import RecordedResource
from infra.platform import deploy
from infra.sizing.gguf import BITS_PER_WEIGHT, gguf_type, memory_bytes, weights_bytes
from tests.helpers import assert_renders_strictly_valid_and_passes_the_pack, of_kind, one, pod_spec

GGUF = {"repo": "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}


def stack(environment: str = "dev", **llamacpp: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "name": "tiny",
        "engine": "llamacpp",
        "modelId": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "servedModelName": "smollm2",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "llamacpp": {"gguf": GGUF, "ctxSize": 2048, "parallel": 4, **llamacpp},
        "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3},
        "cache": {"accessMode": "ReadWriteMany"},
    }
    if environment == "prod":
        model["autoscaling"]["minReplicas"] = 2
        model["image"] = {**LLAMACPP_IMAGE.model_dump(exclude_none=True), "digest": "sha256:" + "c" * 64}
    return {
        "environment": environment,
        # The model hub's proxy (a named range: open egress is a violation in prod).
        "network": {"modelDownload": "allow", "downloadCidrs": ["203.0.113.0/24"]},
        "models": [model],
    }


def server_container(resources: list[RecordedResource]) -> dict[str, Any]:
    (server,) = pod_spec(one(resources, "Deployment", "tiny-deployment"))["containers"]
    return dict(server)


@pytest.fixture(params=[True, False], ids=["preview", "update"])
def resources(request: pytest.FixtureRequest) -> list[RecordedResource]:
    config = validate_stack_config(stack(), "test")
    return run_program(lambda: deploy(config), "test", request.param).resources


def test_server_container(resources: list[RecordedResource]) -> None:
    server = server_container(resources)
    assert server["image"] == f"ghcr.io/ggml-org/llama.cpp:server-{LLAMACPP_BUILD}"
    assert server["command"] == ["/app/llama-server"]
    assert server["args"] == [
        "--model",
        "/models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--alias",
        "smollm2",
        "--ctx-size",
        "2048",
        "--parallel",
        "4",
        "--threads",
        "2",
        "--metrics",
        "--no-webui",
    ]
    assert server["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}
    # The start-up budget: the model's startupTimeoutSeconds (1800 s) at one probe every 10 s.
    assert server["startupProbe"]["failureThreshold"] == 180
    context = server["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert {m["mountPath"] for m in server["volumeMounts"]} == {"/models", "/tmp"}
    assert "nvidia.com/gpu" not in server["resources"]["limits"]


def test_fetch_step_downloads_the_gguf_file(resources: list[RecordedResource]) -> None:
    spec = pod_spec(one(resources, "Deployment", "tiny-deployment"))
    (fetch,) = spec["initContainers"]
    assert fetch["name"] == "fetch-gguf"
    assert fetch["image"] == server_container(resources)["image"]
    env = {e["name"]: e.get("value") for e in fetch["env"]}
    assert env["SLM_GGUF_URL"] == (
        "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    assert env["SLM_GGUF_DIR"] + "/" + env["SLM_GGUF_FILE"] in server_container(resources)["args"]
    assert fetch["securityContext"]["readOnlyRootFilesystem"] is True


def test_service_monitor_scrapes_metrics(resources: list[RecordedResource]) -> None:
    # The model's own; the log collector's (in the monitoring namespace) scrapes the collector.
    (monitor,) = [m for m in of_kind(resources, "ServiceMonitor") if m.name != "logs-collector-scrape"]
    assert monitor.inputs["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor.inputs["spec"]["endpoints"][0]["port"] == "http"


def test_autoscaler_and_alerts_use_the_deferred_requests(resources: list[RecordedResource]) -> None:
    (scaled,) = of_kind(resources, "ScaledObject")
    query = scaled.inputs["spec"]["triggers"][0]["metadata"]["query"]
    assert query == 'sum(llamacpp:requests_deferred{namespace="slm-tiny",pod=~"tiny-[a-z0-9]+-[a-z0-9]+"})'
    (rule,) = of_kind(resources, "PrometheusRule")
    alerts = {r["alert"]: r for group in rule.inputs["spec"]["groups"] for r in group["rules"]}
    assert "llamacpp:requests_deferred" in alerts["SlmQueueDepthHigh"]["expr"]
    # vLLM's histograms and KV-cache gauge have no llama.cpp counterpart: their alerts are left out.
    assert not {"SlmTimeToFirstTokenHigh", "SlmKvCacheSaturated", "SlmRequestErrorRatioHigh"} & alerts.keys()


def test_metric_catalogue_names_what_the_server_exports() -> None:
    names = {metric.name for metric in ENGINE_METRICS["llamacpp"]}
    assert {"llamacpp:requests_deferred", "llamacpp:requests_processing", "llamacpp:tokens_predicted_total"} <= names
    assert all(name.startswith("llamacpp:") for name in names)


def test_no_download_without_egress() -> None:
    config = stack()
    config["network"] = {"modelDownload": "deny"}
    run = run_program(lambda: deploy(validate_stack_config(config, "test")), "test", True)
    assert "initContainers" not in pod_spec(one(run.resources, "Deployment", "tiny-deployment"))


def test_gpu_layers_and_cuda_image() -> None:
    config = stack()
    config["models"][0]["gpu"] = {"count": 1, "vmSize": "Standard_NC4as_T4_v3"}
    run = run_program(lambda: deploy(validate_stack_config(config, "test")), "test", False)
    server = server_container(run.resources)
    assert server["image"] == f"ghcr.io/ggml-org/llama.cpp:server-cuda-{LLAMACPP_BUILD}"
    args = server["args"]
    assert args[args.index("--n-gpu-layers") + 1] == "999"


def test_render_validates_and_prod_passes_the_pack() -> None:
    assert_renders_strictly_valid_and_passes_the_pack(stack("prod"))


def test_catalogue_model_gets_its_gguf_file() -> None:
    config = stack()
    model = config["models"][0]
    del model["modelId"], model["llamacpp"]
    model["catalog"] = "qwen3-0.6b"
    loaded = validate_stack_config(config, "test").models[0]
    assert loaded.model_id == "Qwen/Qwen3-0.6B"
    assert loaded.llamacpp is not None
    assert (loaded.llamacpp.gguf.repo, loaded.llamacpp.gguf.file) == ("Qwen/Qwen3-0.6B-GGUF", "Qwen3-0.6B-Q8_0.gguf")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"llamacpp": None}, "engine 'llamacpp' serves a GGUF file"),
        ({"servedModelName": "a,b"}, "--alias reads as a list"),
        ({"llamacpp": {"gguf": {"file": "model.bin"}}}, "is not a GGUF file name"),
        ({"llamacpp": {"gguf": {"file": "m.gguf", "url": "https://example.org/m.gguf"}}}, "needs its sha256"),
        ({"llamacpp": {"gguf": {**GGUF, "url": "https://example.org/m.gguf"}}}, "give repo or url, not both"),
        ({"llamacpp": {"gguf": GGUF, "extraArgs": ["--port=9000"]}}, "--port is set by the engine"),
        ({"llamacpp": {"gguf": GGUF, "extraArgs": ["--api-key-file", "/k"]}}, "authentication is the entry point"),
    ],
)
def test_config_errors(change: dict[str, Any], message: str) -> None:
    config = stack()
    config["models"][0] |= change
    if change.get("llamacpp", 1) is None:
        del config["models"][0]["llamacpp"]
    with pytest.raises(StackConfigError, match=message):
        validate_stack_config(config, "test")


def test_gguf_sizing() -> None:
    assert gguf_type("SmolLM2-135M-Instruct.Q4_1.gguf") == "Q4_1"
    assert gguf_type("Qwen3-4B-Q4_K_M.gguf") == "Q4_K_M"
    assert gguf_type("gemma-3-1b-it-q4_0.gguf") == "Q4_0"
    assert gguf_type("model.gguf") is None
    # ggml's block sizes: Q4_1 is 20 bytes per 32 weights, Q8_0 34 bytes per 32.
    assert BITS_PER_WEIGHT["Q4_1"] == 5.0
    assert BITS_PER_WEIGHT["Q8_0"] == 8.5
    assert 4.8 < BITS_PER_WEIGHT["Q4_K_M"] < 5.0
    # SmolLM2-135M at Q4_1: the real file is 98,362,432 bytes (token embeddings kept at a higher type).
    assert 0.8e8 < weights_bytes(0.135, "Q4_1") < 0.99e8
    from infra.catalog import get_model

    arch = get_model("qwen3-0.6b").architecture()
    assert memory_bytes(arch, "Q8_0", 4096) > weights_bytes(arch.params, "Q8_0")
    with pytest.raises(ValueError, match="unknown GGUF type"):
        weights_bytes(1, "Q9_9")


def test_memory_limit_must_hold_the_model() -> None:
    config = stack()
    model = config["models"][0]
    del model["modelId"], model["llamacpp"]
    model["catalog"] = "qwen3-8b"  # Qwen3-8B-Q4_K_M.gguf: about 5 GB of weights, in a 2Gi container
    with pytest.raises(StackConfigError, match=r"Qwen3-8B-Q4_K_M.gguf \(Q4_K_M\) with llamacpp.ctxSize 4096 needs"):
        validate_stack_config(config, "test")
    model["resources"] = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}
    assert validate_stack_config(config, "test").models[0].llamacpp is not None
