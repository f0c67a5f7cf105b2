"""The Ollama engine: CPU and GPU variants, the pull step, the Modelfile, hardening like every engine."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.config.loader import validate_stack_config
from infra.config.stack import StackConfig
from infra.engines import context_of
from infra.engines.ollama import _PREPARE_SCRIPT, modelfile, ollama_engine
from infra.plan.engine import run_program
from infra.plan.stack import StackPlan
from infra.platform import deploy
from tests.helpers import one, pod_spec

PlanOf = Callable[[str, bool], StackPlan]


def stack(**model: object) -> StackConfig:
    base = {"name": "chat", "engine": "ollama", "modelId": "qwen3:0.6b"}
    return validate_stack_config({"environment": "dev", "models": [{**base, **model}]}, "test")


def test_dev_reference_stack_serves_a_micro_model_on_cpu(plan_of: PlanOf) -> None:
    plan = plan_of("dev", True)
    spec = pod_spec(one(plan.run.resources, "Deployment", "qwen3-micro-deployment"))
    (server,) = spec["containers"]
    assert server["image"] == "ollama/ollama:0.20.6"
    assert server["ports"] == [{"containerPort": 11434, "name": "http", "protocol": "TCP"}]
    env = {e["name"]: e["value"] for e in server["env"]}
    assert env["OLLAMA_HOST"] == "0.0.0.0:11434"
    assert env["OLLAMA_MODELS"].startswith("/models/") and env["HOME"].startswith("/models/")
    assert (env["OLLAMA_KEEP_ALIVE"], env["OLLAMA_NUM_PARALLEL"], env["OLLAMA_MAX_QUEUE"]) == ("24h", "2", "32")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/api/version", "port": "http"}
    assert "nvidia.com/gpu" not in server["resources"]["limits"]
    assert "tolerations" not in spec and "nodeSelector" not in spec
    (pull,) = spec["initContainers"]
    pull_env = {e["name"]: e["value"] for e in pull["env"]}
    assert pull_env["SLM_MODEL"] == "qwen3:0.6b"
    assert pull_env["SLM_SERVED_NAME"] == "qwen3-micro"
    assert pull_env["SLM_MODELFILE"] == "/etc/slm-deploy/engine/Modelfile"
    assert pull["volumeMounts"] == server["volumeMounts"]
    config = one(plan.run.resources, "ConfigMap", "qwen3-micro-engine-config")
    assert config.inputs["data"]["Modelfile"] == (
        "FROM qwen3:0.6b\n"
        'SYSTEM """You are a concise assistant for the platform team. Answer in plain language."""\n'
        "PARAMETER num_ctx 8192\n"
        "PARAMETER temperature 0.2\n"
    )


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_gpu_variant(preview: bool) -> None:
    config = stack(gpu={"count": 1, "pool": "t4"})
    run = run_program(lambda: deploy(config), "test", preview)
    spec = pod_spec(one(run.resources, "Deployment", "chat-deployment"))
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"slm-deploy.io/gpu-pool": "t4"}
    assert "nvidia.com/gpu" not in spec["initContainers"][0]["resources"]["limits"]
    # No Modelfile: the tag is served under the stack's name through `ollama cp`.
    assert "SLM_MODELFILE" not in {e["name"] for e in spec["initContainers"][0]["env"]}


def test_stop_strings_are_quoted_in_the_modelfile() -> None:
    settings = stack(ollama={"modelfile": {"parameters": {"stop": "<|im_end|>", "top_p": 0.9}}}).models[0].ollama
    assert settings is not None
    assert modelfile("qwen3:0.6b", settings) == 'FROM qwen3:0.6b\nPARAMETER stop "<|im_end|>"\nPARAMETER top_p 0.9\n'


def test_unknown_modelfile_parameter_is_refused() -> None:
    from infra.config.loader import StackConfigError

    with pytest.raises(StackConfigError, match="unknown Modelfile parameter 'temprature'"):
        stack(ollama={"modelfile": {"parameters": {"temprature": 0.2}}})


@pytest.fixture
def fake_ollama(tmp_path: Path) -> Path:
    """An `ollama` on PATH that records its calls; `pull` of a model named 'missing' fails."""
    binary = tmp_path / "bin" / "ollama"
    binary.parent.mkdir()
    binary.write_text(
        "#!/bin/sh\n"
        'echo "$OLLAMA_HOST $*" >> "$CALLS"\n'
        # `list` answers only once `serve` is up, as the real client does.
        'case "$1" in serve) touch "$CALLS.up"; sleep 30 ;; list) [ -f "$CALLS.up" ] ;; '
        'pull) [ "$2" != missing ] ;; *) true ;; esac\n'
    )
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def run_prepare(directory: Path, **env: str) -> tuple[int, list[str]]:
    calls = directory / "calls"
    calls.touch()
    completed = subprocess.run(
        ["/bin/sh", "-c", _PREPARE_SCRIPT],
        env={"PATH": f"{directory / 'bin'}:{os.environ['PATH']}", "CALLS": str(calls), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.returncode, calls.read_text().splitlines()


def test_prepare_step_pulls_then_builds_the_custom_model(fake_ollama: Path) -> None:
    code, calls = run_prepare(
        fake_ollama, SLM_MODEL="qwen3:0.6b", SLM_SERVED_NAME="qwen3-micro", SLM_MODELFILE="/etc/m/Modelfile"
    )
    assert code == 0
    assert "127.0.0.1:11434 serve" in calls
    # `serve` runs in the background and may log at any point; the foreground steps keep their order.
    steps = [c for c in calls if not c.endswith(" serve") and not c.endswith(" list")]
    assert steps == [
        "127.0.0.1:11434 pull qwen3:0.6b",
        "127.0.0.1:11434 create qwen3-micro -f /etc/m/Modelfile",
    ]


def test_a_failed_pull_fails_the_pod(fake_ollama: Path) -> None:
    code, calls = run_prepare(fake_ollama, SLM_MODEL="missing", SLM_SERVED_NAME="chat")
    assert code != 0
    assert not any(" create " in c or " cp " in c for c in calls)


def test_engine_declares_no_metrics_endpoint() -> None:
    config = stack()
    engine = ollama_engine(config.models[0], context_of(config.models[0], config))
    assert engine.metrics_path is None and engine.metrics_port is None
