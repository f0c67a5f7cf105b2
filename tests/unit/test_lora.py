"""Multi-LoRA on vLLM (docs/lora.md): the stack key, its one-line errors, the flags and mounts, the gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from tests.unit.test_config_errors import stack_text

BASE = """
    - name: phi
      engine: vllm
      modelId: microsoft/Phi-4-mini-instruct
      servedModelName: phi-4-mini
      gpu: {count: 1}
"""
LORA = """      lora:
        adapters:
          - {name: support, rank: 16, image: {repository: myacr.azurecr.io/models/support-lora, tag: "1"}}
          - {name: legal, rank: 32, repo: org/legal-lora}
"""
OTHER = """    - name: qwen
      engine: vllm
      modelId: Qwen/Qwen3-0.6B
      servedModelName: support
      gpu: {count: 1}
"""

ERRORS = {
    "not-vllm": (
        "\n    - name: chat\n      engine: ollama\n      modelId: qwen3:0.6b\n" + LORA,
        "slm-deploy:models[0]: lora serves LoRA adapters through vLLM's --enable-lora, but the engine is 'ollama'",
    ),
    "duplicate-adapter": (
        BASE + LORA + "          - {name: support, rank: 8, repo: org/other}\n",
        "slm-deploy:models[0].lora: adapters[2].name 'support' is already used by adapters[0]",
    ),
    "clashes-with-another-model": (
        BASE + LORA + OTHER,
        "slm-deploy:models[0].lora.adapters[0].name: adapter name 'support' is already the served name of models[1]",
    ),
    "clashes-with-its-own-model": (
        BASE + LORA.replace("name: legal", "name: phi-4-mini"),
        "slm-deploy:models[0]: lora.adapters[1].name 'phi-4-mini' is the model's own name",
    ),
    "rank-above-max": (
        BASE + LORA.replace("      lora:\n", "      lora:\n        maxRank: 16\n"),
        "slm-deploy:models[0].lora: adapters[1].rank 32 is above maxRank 16",
    ),
    "rank-out-of-bounds": (
        BASE + LORA.replace("rank: 32", "rank: 1024"),
        "slm-deploy:models[0].lora.adapters[1].rank: must be at most 512, got 1024",
    ),
    "not-a-vllm-rank": (
        BASE + LORA.replace("      lora:\n", "      lora:\n        maxRank: 48\n"),
        "slm-deploy:models[0].lora.maxRank: 48 is not a rank vLLM accepts (1, 8, 16, 32, 64, 128, 256, 320, 512)",
    ),
    "two-sources": (
        BASE + LORA.replace("repo: org/legal-lora", "repo: org/legal-lora, image: {repository: a.io/l, tag: '1'}"),
        "slm-deploy:models[0].lora.adapters[1]: give repo (a Hugging Face repository) or image",
    ),
    "name-with-equals": (
        BASE + LORA.replace("name: legal", "name: 'legal=x'"),
        "slm-deploy:models[0].lora.adapters[1].name: 'legal=x' contains '=', which separates name and path",
    ),
    "repo-without-a-cache": (
        BASE
        + "      weights: {source: imageVolume, image: {repository: myacr.azurecr.io/models/phi, tag: '1'}}\n"
        + LORA,
        "slm-deploy:models[0]: lora.adapters[1].repo is downloaded into the cache volume, which a model whose weights "
        "come in an image volume does not have",
    ),
    "raw-lora-flags": (
        BASE + "      vllm: {extraArgs: [--enable-lora]}\n",
        "slm-deploy:models[0].vllm.extraArgs[0]: '--enable-lora' sets --enable-lora, which the engine sets already "
        "from slm-deploy:models[0].lora",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_bad_lora_key_is_one_line(case: str, stack_dir: Path) -> None:
    models, expected = ERRORS[case]
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(stack_text(models))
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(stack_dir)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Pulumi.bad.yaml: " in lines[0], result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


def _server(stack_dir: Path, models: str) -> dict[str, Any]:
    (stack_dir / "stacks" / "Pulumi.lora.yaml").write_text(stack_text(models))
    out = stack_dir / "out"
    result = CliRunner().invoke(app, ["render", "--stack", "lora", "--root", str(stack_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    documents = [d for p in sorted(out.rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def test_adapters_are_declared_on_the_command_line_and_mounted_read_only(stack_dir: Path) -> None:
    pod = _server(stack_dir, BASE + LORA)
    container = pod["containers"][0]
    args = container["args"]
    start = args.index("--enable-lora")
    # One --lora-modules followed by one name=path word per adapter (vLLM's LoRAParserAction; a second flag would
    # replace the list); the smallest vLLM rank covering every adapter; every adapter usable in one batch.
    assert args[start:] == [
        "--enable-lora",
        "--max-lora-rank=32",
        "--max-loras=2",
        "--lora-modules",
        "support=/lora/0",
        "legal=org/legal-lora",
    ]
    assert {"name": "lora-0", "mountPath": "/lora/0", "readOnly": True} in container["volumeMounts"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["lora-0"]["image"] == {
        "reference": "myacr.azurecr.io/models/support-lora:1",
        "pullPolicy": "IfNotPresent",
    }
    assert "lora-1" not in volumes  # the repository adapter is downloaded into the cache like the weights
    names = {e["name"] for e in container["env"]}
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in names


def test_the_gate_admits_start_up_adapters_and_keeps_runtime_lora_dangerous() -> None:
    from policies.lib.engine_flags import DANGEROUS_ENV, DANGEROUS_FLAGS, VLLM, VLLM_FLAGS

    assert {"--enable-lora", "--lora-modules", "--max-lora-rank", "--max-loras"} <= VLLM_FLAGS
    assert not {"--enable-lora", "--lora-modules"} & set(DANGEROUS_FLAGS[VLLM])
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" in DANGEROUS_ENV
