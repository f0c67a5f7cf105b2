"""Ollama with `network.modelDownload: deny`: no pull, the model found in the cache or a clear failure at once."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.config.loader import validate_stack_config
from infra.config.stack_warnings import MODEL_CACHE_DOC
from infra.engines.ollama import _OFFLINE_SCRIPT, _PREPARE_SCRIPT, prepare_script
from infra.plan.engine import run_program
from infra.platform import deploy
from tests.cli_output import stack_file_lines
from tests.conftest import ROOT
from tests.helpers import one, pod_spec

ALLOW = {"modelDownload": "allow", "downloadCidrs": ["203.0.113.0/24"]}


def init_container(network: dict[str, Any] | None, **model: Any) -> dict[str, Any]:
    base = {"name": "chat", "engine": "ollama", "modelId": "qwen3:0.6b", **model}
    values: dict[str, Any] = {"environment": "dev", "models": [base]}
    if network is not None:
        values["network"] = network
    config = validate_stack_config(values, "test")
    run = run_program(lambda: deploy(config), "test", False)
    (step,) = pod_spec(one(run.resources, "Deployment", "chat-deployment"))["initContainers"]
    return dict(step)


def script_of(step: dict[str, Any]) -> str:
    assert step["command"][:2] == ["/bin/sh", "-c"]
    return str(step["command"][2])


@pytest.mark.parametrize("network", [None, {"modelDownload": "deny"}], ids=["default", "explicit"])
def test_with_downloads_denied_the_init_step_never_pulls(network: dict[str, Any] | None) -> None:
    step = init_container(network, ollama={"modelfile": {"system": "Be brief."}})
    script = script_of(step)
    assert script == _OFFLINE_SCRIPT == prepare_script(downloads_allowed=False)
    assert "ollama pull" not in script
    assert 'ollama show "$SLM_MODEL"' in script
    assert "is not in the model cache" in script and "network.modelDownload is deny" in script
    assert MODEL_CACHE_DOC in script
    # Still the same container (a renamed init container would restart every pod), still building the model.
    assert step["name"] == "pull-model"
    assert 'ollama create "$SLM_SERVED_NAME"' in script


def test_with_downloads_allowed_the_init_step_pulls() -> None:
    script = script_of(init_container(ALLOW))
    assert script == _PREPARE_SCRIPT == prepare_script(downloads_allowed=True)
    assert 'ollama pull "$SLM_MODEL"' in script and "ollama show" not in script


def test_the_two_scripts_differ_only_in_the_model_step() -> None:
    allowed, denied = prepare_script(True), prepare_script(False)
    head = allowed[: allowed.index("ollama pull")]
    assert denied.startswith(head)
    tail = allowed[allowed.index('if [ -n "${SLM_MODELFILE:-}" ]') :]
    assert denied.endswith(tail)


@pytest.fixture
def fake_ollama(tmp_path: Path) -> Path:
    """An `ollama` on PATH that logs its arguments; `show` finds only the models listed in $CACHED."""
    binary = tmp_path / "bin" / "ollama"
    binary.parent.mkdir()
    binary.write_text(
        "#!/bin/sh\n"
        'echo "$OLLAMA_HOST $*" >> "$CALLS"\n'
        'case "$1" in serve) touch "$CALLS.up"; sleep 30 ;; list) [ -f "$CALLS.up" ] ;; '
        'show) grep -qxF "$2" "$CACHED" ;; pull) echo "pull must not run" >&2; exit 99 ;; *) true ;; esac\n'
    )
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def run_offline(directory: Path, cached: list[str], **env: str) -> tuple[int, list[str], str]:
    calls, cache = directory / "calls", directory / "cached"
    calls.touch()
    cache.write_text("".join(f"{name}\n" for name in cached))
    completed = subprocess.run(
        ["/bin/sh", "-c", _OFFLINE_SCRIPT],
        env={
            "PATH": f"{directory / 'bin'}:{os.environ['PATH']}",
            "CALLS": str(calls),
            "CACHED": str(cache),
            "OLLAMA_MODELS": "/models/ollama",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    steps = [c for c in calls.read_text().splitlines() if not c.endswith((" serve", " list"))]
    return completed.returncode, steps, completed.stderr


def test_a_missing_model_fails_at_once_with_a_clear_message(fake_ollama: Path) -> None:
    code, steps, stderr = run_offline(fake_ollama, [], SLM_MODEL="qwen3:0.6b", SLM_SERVED_NAME="chat")
    assert code == 1
    assert steps == ["127.0.0.1:11434 show qwen3:0.6b"]
    assert stderr.strip() == (
        "slm-deploy: model 'qwen3:0.6b' is not in the model cache (OLLAMA_MODELS=/models/ollama) and "
        "network.modelDownload is deny, so it is not pulled: pre-fill the cache volume (see docs/model-cache.md) "
        "or allow downloads"
    )


def test_a_cached_model_is_built_without_the_registry(fake_ollama: Path) -> None:
    code, steps, _ = run_offline(
        fake_ollama,
        ["qwen3:0.6b"],
        SLM_MODEL="qwen3:0.6b",
        SLM_SERVED_NAME="qwen3-micro",
        SLM_MODELFILE="/etc/m/Modelfile",
    )
    assert code == 0
    assert steps == ["127.0.0.1:11434 show qwen3:0.6b", "127.0.0.1:11434 create qwen3-micro -f /etc/m/Modelfile"]


def test_a_cached_tag_is_copied_under_the_served_name(fake_ollama: Path) -> None:
    code, steps, _ = run_offline(fake_ollama, ["qwen3:0.6b"], SLM_MODEL="qwen3:0.6b", SLM_SERVED_NAME="chat")
    assert code == 0
    assert steps == ["127.0.0.1:11434 show qwen3:0.6b", "127.0.0.1:11434 cp qwen3:0.6b chat"]


def stack_file(network: str, model: str) -> str:
    return f"config:\n  slm-deploy:environment: dev\n{network}  slm-deploy:models:\n{model}"


OLLAMA = "    - name: chat\n      engine: ollama\n      modelId: qwen3:0.6b\n"
VLLM = "    - name: big\n      engine: vllm\n      modelId: Qwen/Qwen3-4B\n      gpu: {count: 1}\n"
ONNX = (
    "    - name: edge\n      engine: onnx\n      modelId: microsoft/Phi-4-mini-instruct\n"
    "      image: {repository: r/onnx, tag: '1'}\n"
)
ONNX_PREPARED = ONNX.replace("name: edge", "name: conv") + (
    "      onnx:\n        prepare:\n          source: Qwen/Qwen3-0.6B\n"
    "          image: {repository: r/prep, tag: '1'}\n"
)


def validate(stack_dir: Path, text: str) -> tuple[int, str, list[str]]:
    (stack_dir / "stacks" / "Pulumi.edge.yaml").write_text(text)
    result = CliRunner().invoke(app, ["validate", "--stack", "edge", "--root", str(stack_dir)])
    return result.exit_code, result.stdout, stack_file_lines(result.stderr)


def test_validate_warns_that_the_cache_must_be_pre_filled(stack_dir: Path) -> None:
    code, stdout, lines = validate(stack_dir, stack_file("", OLLAMA))
    assert code == 0 and "valid (1 model(s), environment dev)" in stdout
    assert lines == [
        f"warning: {stack_dir}/stacks/Pulumi.edge.yaml: slm-deploy:network.modelDownload: is deny, and model 'chat' "
        "(ollama) is not pulled: its init step fails unless 'qwen3:0.6b' is already in the cache volume; the cache "
        "must be pre-filled: see docs/model-cache.md"
    ]
    assert (ROOT / MODEL_CACHE_DOC).is_file()


def test_each_engine_says_why(stack_dir: Path) -> None:
    code, _, lines = validate(stack_dir, stack_file("", OLLAMA + VLLM + ONNX + ONNX_PREPARED))
    assert code == 0
    assert len(lines) == 4 and all(
        line.startswith(f"warning: {stack_dir}/stacks/Pulumi.edge.yaml: slm-deploy:network.modelDownload: is deny")
        and line.endswith("the cache must be pre-filled: see docs/model-cache.md")
        for line in lines
    ), lines
    assert "model 'big' (vllm) runs offline (HF_HUB_OFFLINE=1): 'Qwen/Qwen3-4B' must already be" in lines[1]
    assert "model 'edge' (onnx) has no onnx.prepare" in lines[2]
    assert "model 'conv' (onnx) has a preparation Job that downloads 'Qwen/Qwen3-0.6B'" in lines[3]


def test_no_warning_when_downloads_are_allowed(stack_dir: Path) -> None:
    network = "  slm-deploy:network:\n    modelDownload: allow\n    downloadCidrs: [203.0.113.0/24]\n"
    code, _, lines = validate(stack_dir, stack_file(network, OLLAMA + VLLM))
    assert code == 0 and lines == []


def test_the_docs_give_the_commands() -> None:
    text = (ROOT / MODEL_CACHE_DOC).read_text(encoding="utf-8")
    for command in ("ollama pull", "hf download", "kubectl apply -f cache-fill.yaml", "tar -C cache/ollama -cf - ."):
        assert command in text, command
    # The engines page of the docs site links it (moved out of the README).
    engines = (ROOT / "docs" / "engines.md").read_text(encoding="utf-8")
    assert f"]({Path(MODEL_CACHE_DOC).name})" in engines
