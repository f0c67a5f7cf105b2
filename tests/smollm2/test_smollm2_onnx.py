"""The real SmolLM2-135M-Instruct on the ONNX engine: converted from its GGUF file by the project's preparation,
served by the project's server with the rendered environment, through the official `openai` client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.onnx_server.onnx_server_helpers import RunningServer
from tests.real_model import ServesTheRealModel, check_chat_with_usage
from tests.smollm2.smollm2_helpers import (
    SERVED_NAME,
    Converted,
    Planned,
    convert,
    gguf_model,
    local_convert_argv,
    manifest,
    weight_bits,
)

# One server for the module: its tests run in one xdist worker.
pytestmark = pytest.mark.xdist_group("smollm2")


@pytest.fixture(scope="module")
def client(onnx_server: RunningServer) -> OpenAI:
    return OpenAI(base_url=onnx_server.base + "/v1", api_key="not-checked", timeout=180, max_retries=0)


def test_the_rendered_conversion_runs_and_gives_the_served_model(
    smollm2: Converted, plan: Planned, tmp_path: Path
) -> None:
    # The real conversion path, every run, with the preparation Job's rendered command: GGUF -> dequantised FP32
    # folder -> model builder. The served model is the cached output of the same code and inputs
    # (scripts/smollm2-onnx.sh keys it by both); the conversion is deterministic, so equal bytes prove the cache
    # holds what the code produces now.
    output = tmp_path / "volume" / "smollm2"
    argv = local_convert_argv(plan.convert, smollm2.python, gguf_model(), output)
    answer = convert(argv, tmp_path)
    assert answer == {"outcome": "converted", "model": str(output)}
    assert [p.name for p in output.parent.iterdir()] == ["smollm2"]  # no staging folder left behind
    assert manifest(output) == manifest(smollm2.model)
    # precision auto: INT4 with the LM head and llama.cpp's sensitive layers in INT8 (k_quant_mixed).
    assert "--precision=auto" in argv
    assert weight_bits(smollm2.python, output) == {4, 8}
    assert convert(argv, tmp_path)["outcome"] == "already-prepared"


def test_the_converted_model_keeps_the_chat_template(smollm2: Converted) -> None:
    # Rebuilt from the GGUF's metadata: without it the server could not format chat messages for this model.
    template = (smollm2.model / "chat_template.jinja").read_text(encoding="utf-8")
    assert "<|im_start|>" in template and "add_generation_prompt" in template


def test_server_runs_with_the_rendered_environment(onnx_server: RunningServer, plan: Planned) -> None:
    assert plan.server_env["SLM_ONNX_CONTEXT_LENGTH"] == "2048"
    assert plan.server_env["SLM_ONNX_MAX_BATCH_SIZE"] == "4"
    assert plan.server_env["SLM_ONNX_SERVED_MODEL_NAME"] == SERVED_NAME
    assert httpx.get(onnx_server.base + "/health", timeout=5).status_code == 200


class TestOnnxServer(ServesTheRealModel):
    served_name = SERVED_NAME


def test_metrics_count_the_generated_tokens(onnx_server: RunningServer, client: OpenAI) -> None:
    check_chat_with_usage(client, SERVED_NAME)
    samples = onnx_server.metrics()
    generated = [value for key, value in samples.items() if key.startswith("vllm:generation_tokens_total")]
    assert generated and sum(generated) > 0
