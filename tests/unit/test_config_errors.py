"""A bad stack file gives one clear line naming the file and the key path, exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app

GOOD_MODEL = """
    - name: qwen3
      engine: vllm
      modelId: Qwen/Qwen3-0.6B
      gpu: {count: 1}
"""


def stack_text(models: str = GOOD_MODEL, extra: str = "") -> str:
    return f"config:\n  slm-deploy:environment: dev\n{extra}  slm-deploy:models:{models}"


CASES = {
    "wrong-type": (
        stack_text(GOOD_MODEL + "      replicas: three\n"),
        "slm-deploy:models[0].replicas: expected an integer, got 'three'",
    ),
    "unknown-key": (
        stack_text(GOOD_MODEL + "      replica: 2\n"),
        "slm-deploy:models[0].replica: unknown key (known keys: architecture, autoscaling, cache, catalog, engine,",
    ),
    "unknown-top-level-key": (
        stack_text(extra="  slm-deploy:modles: []\n"),
        "slm-deploy:modles: unknown key (known keys: cluster, entryPoint, environment,",
    ),
    "unknown-engine": (
        stack_text(GOOD_MODEL + "    - name: other\n      engine: vlm\n      modelId: x\n"),
        "slm-deploy:models[1].engine: unknown engine 'vlm' (expected vllm, ollama, onnx)",
    ),
    "zero-replicas": (
        stack_text(GOOD_MODEL + "      replicas: 0\n"),
        "slm-deploy:models[0].replicas: must be at least 1, got 0",
    ),
    "negative-replicas": (
        stack_text(GOOD_MODEL + "      replicas: -2\n"),
        "slm-deploy:models[0].replicas: must be at least 1, got -2",
    ),
    "gpu-on-cpu-only-engine": (
        stack_text("\n    - name: edge\n      engine: onnx\n      modelId: phi\n      gpu: {count: 1}\n"),
        "slm-deploy:models[0]: gpu.count is 1, but engine 'onnx' on device 'cpu' is CPU-only",
    ),
    "duplicate-model-names": (
        stack_text(GOOD_MODEL + GOOD_MODEL.lstrip("\n")),
        "slm-deploy:models[1].name: model name 'qwen3' is already used by models[0]",
    ),
    "name-not-dns-label": (
        stack_text(GOOD_MODEL.replace("name: qwen3", "name: Qwen_3")),
        "slm-deploy:models[0].name: 'Qwen_3' is not a valid Kubernetes DNS label",
    ),
    "memory-does-not-parse": (
        stack_text(GOOD_MODEL + "      resources:\n        requests: {cpu: '2', memory: 8 gigs}\n"),
        "slm-deploy:models[0].resources.requests.memory: '8 gigs' is not a Kubernetes quantity",
    ),
    "cpu-does-not-parse": (
        stack_text(GOOD_MODEL + "      resources:\n        limits: {cpu: two, memory: 8Gi}\n"),
        "slm-deploy:models[0].resources.limits.cpu: 'two' is not a Kubernetes quantity",
    ),
    "limits-below-requests": (
        stack_text(
            GOOD_MODEL + "      resources:\n        requests: {cpu: '8', memory: 8Gi}\n"
            "        limits: {cpu: '4', memory: 8Gi}\n"
        ),
        "slm-deploy:models[0].resources: limits.cpu 4 is below requests.cpu 8",
    ),
    "latest-tag": (
        stack_text(GOOD_MODEL + "      image: {repository: vllm/vllm-openai, tag: latest}\n"),
        "slm-deploy:models[0].image.tag: 'latest' is not a version: pin a release tag",
    ),
    "missing-environment": (
        "config:\n  slm-deploy:models:" + GOOD_MODEL,
        "slm-deploy:environment: required key is missing",
    ),
    "plain-text-secret": (
        stack_text(extra="  slm-deploy:secrets:\n    hfToken: hf_plaintext\n"),
        "slm-deploy:secrets.hfToken: must be a secret, not plain text",
    ),
    "unknown-secret-reference": (
        stack_text(GOOD_MODEL + "      hfTokenSecret: hfToken\n"),
        "slm-deploy:models[0].hfTokenSecret: names secret 'hfToken', which is not under secrets",
    ),
    "shared-rwo-cache": (
        stack_text(GOOD_MODEL + "      replicas: 2\n"),
        "slm-deploy:models[0]: cache.accessMode ReadWriteOnce cannot be shared by 2 replicas",
    ),
    "not-yaml": ("config: [unclosed\n", "is not valid YAML at line"),
    "waiverless-public-load-balancer-in-prod": (
        "config:\n  slm-deploy:environment: prod\n"
        "  slm-deploy:secrets:\n    apiKeys: {secure: v1:abc}\n"
        "  slm-deploy:entryPoint:\n    enabled: true\n    hostname: llm.example.com\n"
        "    exposure: public\n    apiKeys: apiKeys\n    tls: {issuerRef: {name: letsencrypt}}\n"
        "  slm-deploy:models:\n    - {name: chat, engine: vllm, modelId: x, replicas: 2, gpu: {count: 1},"
        " cache: {accessMode: ReadWriteMany}}\n",
        "slm-deploy:entryPoint.exposure: a public load balancer in prod needs a waiver",
    ),
    "model-too-big-for-its-gpu": (
        stack_text(
            "\n    - name: big\n      engine: vllm\n      catalog: qwen3-14b\n"
            "      gpu: {count: 1, vmSize: Standard_NC4as_T4_v3}\n      sizing: {precision: bf16}\n"
        ),
        "slm-deploy:models[0].gpu.vmSize: big (bf16, context 8192, 8 sequences) needs",
    ),
    "unknown-catalogue-model": (
        stack_text("\n    - name: x\n      engine: vllm\n      catalog: qwen4-9b\n      gpu: {count: 1}\n"),
        "slm-deploy:models[0]: unknown model 'qwen4-9b'",
    ),
    "unknown-secret-backend": (
        stack_text(extra="  slm-deploy:secretStore: {backend: vault}\n"),
        "slm-deploy:secretStore.backend: unknown backend 'vault' (expected kubernetes, azure-keyvault)",
    ),
    "key-vault-backend-without-vault": (
        stack_text(extra="  slm-deploy:secretStore: {backend: azure-keyvault}\n"),
        "slm-deploy:secretStore: backend 'azure-keyvault' needs keyVault (name, resourceGroup, location)",
    ),
    "cilium-download-without-hosts": (
        stack_text(extra="  slm-deploy:network: {policyEngine: cilium, modelDownload: allow}\n"),
        "slm-deploy:network: modelDownload is 'allow' with policyEngine 'cilium' but downloadHosts is empty",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_stack_file_gives_one_clear_error(case: str, stack_dir: Path) -> None:
    text, expected = CASES[case]
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(text)
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(stack_dir)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Pulumi.bad.yaml: " in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_missing_stack_file(stack_dir: Path) -> None:
    result = CliRunner().invoke(app, ["validate", "--stack", "nope", "--root", str(stack_dir)])
    assert result.exit_code == 2
    assert "Pulumi.nope.yaml: no such stack file" in result.stderr


def test_real_console_script_exits_2_without_traceback_and_writes_nothing(stack_dir: Path) -> None:
    text, _ = CASES["unknown-engine"]
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(text)
    out = stack_dir / "render"
    completed = subprocess.run(
        [sys.executable, "-m", "infra.cli", "render", "--stack", "bad", "--out", str(out)],
        cwd=stack_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "error: stacks/Pulumi.bad.yaml: slm-deploy:models[1].engine: unknown engine 'vlm' (expected vllm, ollama, onnx)"
    )
    assert "Traceback" not in completed.stdout + completed.stderr
    assert not out.exists()
