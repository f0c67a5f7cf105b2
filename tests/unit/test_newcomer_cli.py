"""What a newcomer trips over first: --version and -h, stack names and stack file paths with suggestions, a
name no level binds (judged at prod), the model catalogue with its gated models, gated models without a
token, unknown regions, and `docs` outside the project folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from infra.catalog import load_catalogue
from infra.cli import app
from infra.config.loader import StackConfigError, load_stack_file, validate_stack_config

CLI = [sys.executable, "-c", "from infra.cli import main; main()"]

LAB = """config:
  slm-deploy:environment: dev
  slm-deploy:cluster: {mode: existing, context: kind-lab}
  slm-deploy:models:
    - name: chat
      engine: ollama
      catalog: qwen3-0.6b
      resources:
        requests: {cpu: "1", memory: 2Gi}
        limits: {cpu: "2", memory: 4Gi}
"""


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.lab.yaml").write_text(LAB)
    return tmp_path


def test_version_and_short_help() -> None:
    from importlib.metadata import version

    done = _run("--version")
    assert done.returncode == 0 and done.stdout == f"slm-deploy {version('slm-deploy')}\n"
    for args in (["-h"], ["validate", "-h"], ["check", "-h"]):
        done = _run(*args)
        assert done.returncode == 0 and "Usage: slm-deploy" in done.stdout, args


def test_a_mistyped_stack_name_gets_suggestions(root: Path) -> None:
    done = _run("validate", "--stack", "devv", "--root", str(root))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "no such stack file (did you mean 'dev'? stacks here: " in done.stderr


@pytest.mark.parametrize("given", ["Pulumi.dev.yaml", "stacks/Pulumi.dev.yaml"])
def test_the_stack_file_path_is_accepted(root: Path, given: str) -> None:
    result = CliRunner().invoke(app, ["validate", "--stack", given, "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "Pulumi.dev.yaml: valid" in result.stdout


def test_a_stack_file_elsewhere_names_its_project(project: Path, tmp_path: Path) -> None:
    done = _run("validate", "--stack", str(project / "stacks" / "Pulumi.lab.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    loose = tmp_path / "Pulumi.loose.yaml"
    loose.write_text(LAB)
    done = _run("validate", "--stack", str(loose))
    assert done.returncode == 2 and "stack files live in a stacks/ folder" in done.stderr


def test_validate_and_plan_say_an_unbound_name_is_judged_at_prod(project: Path, root: Path) -> None:
    for command in ("validate", "plan"):
        done = _run(command, "--stack", "lab", "--root", str(project))
        assert done.returncode == 0, done.stderr
        assert "stack 'lab' is bound to no level file, so it is judged at prod" in done.stderr, command
    done = _run("validate", "--stack", "dev", "--root", str(root))
    assert "judged at" not in done.stderr


def test_models_lists_the_catalogue_with_gated_models() -> None:
    result = CliRunner().invoke(app, ["models", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["key"]: row for row in json.loads(result.stdout)["models"]}
    assert set(rows) == set(load_catalogue())
    gated = {key for key, row in rows.items() if row["gated"]}
    assert {"llama-3.2-1b-instruct", "llama-3.2-3b-instruct", "gemma-3-1b-it", "gemma-3-27b-it"} <= gated
    assert not gated & {"phi-4-mini-instruct", "qwen3-0.6b", "qwen3-14b"}
    llama = rows["llama-3.2-3b-instruct"]
    assert llama["licence"] == "Llama 3.2 Community License" and llama["displayName"] == "Llama 3.2 3B Instruct"
    assert llama["engines"]["vllm"] == "meta-llama/Llama-3.2-3B-Instruct" and llama["engines"]["llamacpp"]["file"]
    assert llama["paramsBillion"] == 3.21 and llama["weightsGbBf16"] == 6.4
    text = CliRunner().invoke(app, ["models"]).stdout
    assert "llama-3.2-3b-instruct" in text and "Llama 3.2 Community License" in text


def test_models_with_a_stack_says_whether_a_token_is_configured(root: Path) -> None:
    result = CliRunner().invoke(app, ["models", "--stack", "prod", "--root", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    used = {m["name"]: m for row in json.loads(result.stdout)["models"] for m in row["stackModels"]}
    prod = yaml.safe_load((root / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["slm-deploy:models"]
    for model in prod:
        if model.get("catalog"):
            assert used[model["name"]]["tokenConfigured"] is ("hfTokenSecret" in model)


def _gated(**model: object) -> dict[str, object]:
    return {
        "environment": "dev",
        "network": {"modelDownload": "allow", "downloadCidrs": ["0.0.0.0/0"]},
        "models": [{"name": "chat", "engine": "vllm", "catalog": "llama-3.2-3b-instruct", "gpu": {"count": 1},
                    **model}],
    }  # fmt: skip


def test_a_gated_model_that_downloads_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError) as caught:
        validate_stack_config(_gated(), "stacks/Pulumi.lab.yaml")
    assert str(caught.value).startswith("stacks/Pulumi.lab.yaml: slm-deploy:models[0].hfTokenSecret: model 'chat' ")
    assert "meta-llama/Llama-3.2-3B-Instruct, a gated Hugging Face repository" in str(caught.value)
    with_token = _gated(hfTokenSecret="hfToken")
    with_token["secrets"] = {"hfToken": {"secure": "v1:AAAA"}}  # as `pulumi config set --secret` stores it
    stack = tmp_path / "Pulumi.lab.yaml"
    stack.write_text(yaml.safe_dump({"config": {f"slm-deploy:{k}": v for k, v in with_token.items()}}))
    assert load_stack_file(stack).models[0].hf_token_secret == "hfToken"
    denied = _gated()
    denied["network"] = {"modelDownload": "deny"}
    validate_stack_config(denied, "x")  # nothing is downloaded: the cache is pre-filled
    ungated = _gated()
    ungated["models"][0]["catalog"] = "qwen3-4b"  # type: ignore[index]
    validate_stack_config(ungated, "x")


@pytest.mark.parametrize(("catalog", "gated"), [("gemma-3-1b-it", True), ("llama-3.2-1b-instruct", False)])
def test_a_gguf_from_a_gated_models_publisher_needs_a_token_too(catalog: str, gated: bool) -> None:
    # Google's own GGUF of Gemma 3 asks for the licence; bartowski's GGUF of Llama 3.2 does not.
    values = _gated(engine="llamacpp", catalog=catalog, gpu={"count": 0},
                    resources={"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}})
    if gated:
        with pytest.raises(StackConfigError, match=r"models\[0\]\.hfTokenSecret: .*google/gemma-3-1b-it-qat-q4_0-gguf"):
            validate_stack_config(values, "x")
    else:
        validate_stack_config(values, "x")


def test_unknown_regions_are_refused_at_their_key(root: Path) -> None:
    config = yaml.safe_load((root / "stacks" / "Pulumi.prod.yaml").read_text())["config"]
    values = {key.removeprefix("slm-deploy:"): value for key, value in config.items()}
    values["cluster"]["location"] = "westeurop"
    with pytest.raises(StackConfigError, match=r"slm-deploy:cluster\.location: unknown Azure region 'westeurop' "
                                               r"\(did you mean 'westeurope'"):  # fmt: skip
        validate_stack_config(values, "stacks/Pulumi.prod.yaml")


def test_docs_outside_the_project_is_one_line(tmp_path: Path) -> None:
    done = _run("docs", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "error: docs/reference.md: no such file (run `slm-deploy docs` in the project folder, " \
        "or give --root)\n"


def _snake_keys(value: object) -> set[str]:
    if isinstance(value, dict):
        found = {k for k in value if isinstance(k, str) and "_" in k.strip("_") and k == k.lower()}
        return found.union(*(_snake_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_snake_keys(v) for v in value))
    return set()


@pytest.mark.parametrize(
    "args",
    [
        ["size", "phi-4-mini-instruct", "--format", "json"],
        ["size", "qwen3-14b", "--vm-size", "Standard_NC4as_T4_v3", "--format", "json"],
        ["models", "--format", "json"],
        ["cost", "--stack", "prod", "--format", "json"],
        ["plan", "--stack", "dev", "--show", "network", "--format", "json"],
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_json_outputs_use_camel_case_keys(root: Path, args: list[str]) -> None:
    where = ["--root", str(root)] if "--stack" in args else []
    result = CliRunner().invoke(app, [*args, *where])
    assert result.exit_code in (0, 1), result.output
    assert _snake_keys(json.loads(result.stdout)) == set()


def test_render_json_uses_camel_case_keys(root: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["render", "--stack", "dev", "--root", str(root), "--out", str(tmp_path / "r"),
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _snake_keys(json.loads(result.stdout)) == set()


@pytest.mark.parametrize(
    ("stack", "change", "key", "message"),
    [
        ("dev", lambda c: c["cluster"]["costBasis"].update(cpuVmSize="Standard_D4ds_v6"), "cluster.costBasis.cpuVmSize",
         "unknown CPU VM size 'Standard_D4ds_v6' (did you mean 'Standard_D4ds_v5'"),
        ("dev", lambda c: c["cluster"]["costBasis"].update(region="westeurop"), "cluster.costBasis.region",
         "unknown Azure region 'westeurop' (did you mean 'westeurope'"),
        ("staging", lambda c: c["cluster"]["costBasis"].update(gpuVmSize="Standard_D4ds_v5"),
         "cluster.costBasis.gpuVmSize", "unknown GPU VM size 'Standard_D4ds_v5'"),
        ("prod", lambda c: c["cluster"]["systemPool"].update(vmSize="Standard_D4s_v9"), "cluster.systemPool.vmSize",
         "unknown VM size 'Standard_D4s_v9'"),
    ],
    ids=["cpuVmSize", "costBasis.region", "gpuVmSize", "systemPool.vmSize"],
)  # fmt: skip
def test_unknown_vm_sizes_and_regions_are_refused_at_their_key(
    root: Path, stack: str, change: object, key: str, message: str
) -> None:
    config = yaml.safe_load((root / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    values = {name.removeprefix("slm-deploy:"): value for name, value in config.items()}
    if values["cluster"]["mode"] == "aks":
        values["cluster"].setdefault("systemPool", {})
    change(values)  # type: ignore[operator]
    with pytest.raises(StackConfigError) as caught:
        validate_stack_config(values, f"stacks/Pulumi.{stack}.yaml")
    assert str(caught.value).startswith(f"stacks/Pulumi.{stack}.yaml: slm-deploy:{key}: "), str(caught.value)
    assert message in str(caught.value)


def test_a_mistyped_waiver_gets_did_you_mean(root: Path, tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    text = (root / "stacks" / "Pulumi.dev.yaml").read_text()
    text += """  slm-deploy:waivers:
    - policy: read-only-rootfilesystem
      resource: qwen3-micro-deploymnet
      reason: trying the engine's cache on the root filesystem
      owner: ml-platform@example.com
      expires: "2026-12-31"
"""
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(text)
    result = CliRunner().invoke(app, ["check", "--stack", "dev", "--root", str(tmp_path), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    messages = " ".join(r["message"] or "" for r in report["results"] if r["status"] == "violation")
    assert "names policy 'read-only-rootfilesystem', which is not a waivable policy of this pack (did you mean " \
        "'read-only-root-filesystem'?)" in messages
    assert "names resource 'qwen3-micro-deploymnet', which this stack does not declare (did you mean " \
        "'qwen3-micro-deployment'?)" in messages


def test_bench_names_the_stacks_cluster_and_a_server_that_is_down(project: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    done = _run("bench", "--url", url, "--stack", "lab", "--root", str(project), "--requests", "1")
    assert done.returncode == 2
    assert f"bench: {url} of stack 'lab', whose cluster is kubeconfig context kind-lab" in done.stderr
    assert f"error: cannot reach 127.0.0.1:{port}: connection refused" in done.stderr
