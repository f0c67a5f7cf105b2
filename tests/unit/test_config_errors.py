"""A bad stack file gives one clear line naming the file and the key path, exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.config.loader import StackConfigError, load_stack_file

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
        "slm-deploy:models[0].replica: unknown key (did you mean 'replicas'? known keys: architecture, autoscaling,",
    ),
    "unknown-top-level-key": (
        stack_text(extra="  slm-deploy:modles: []\n"),
        "slm-deploy:modles: unknown key (did you mean 'models'? known keys: chatUi, cluster, entryPoint, environment,",
    ),
    "unknown-engine": (
        stack_text(GOOD_MODEL + "    - name: other\n      engine: vlm\n      modelId: x\n"),
        "slm-deploy:models[1].engine: unknown engine 'vlm' (did you mean 'vllm'? "
        "expected vllm, ollama, onnx, llamacpp)",
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
        "slm-deploy:models[0].name: 'Qwen_3' is not a DNS-1123 label: 'Q' is not allowed",
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
    # --- the file itself -----------------------------------------------------------------------------------------
    "empty-file": ("", "Pulumi.bad.yaml: is empty: a stack file holds 'config:'"),
    "only-a-comment": ("# nothing here yet\n", "Pulumi.bad.yaml: is empty"),
    "no-config-section": (
        "slm-deploy:environment: dev\n",
        "Pulumi.bad.yaml: has no 'config:' section, where the slm-deploy:* keys live (found: slm-deploy:environment)",
    ),
    "empty-config-section": ("config:\n", "Pulumi.bad.yaml: config: is empty: set slm-deploy:environment"),
    "no-slm-deploy-keys": (
        "config:\n  kubernetes:context: aks-dev\n",
        "Pulumi.bad.yaml: config: has no slm-deploy:* keys (found: kubernetes:context)",
    ),
    "key-without-namespace": (
        "config:\n  environment: dev\n",
        "Pulumi.bad.yaml: config.environment: has no namespace: Pulumi refuses it; write slm-deploy:environment",
    ),
    "misspelt-namespace": (
        stack_text(extra="  slm-deploi:labels: {team: ml}\n"),
        "config.slm-deploi:labels: unknown namespace 'slm-deploi' (did you mean slm-deploy:labels?)",
    ),
    "repeated-key": (
        stack_text(GOOD_MODEL + "      replicas: 1\n      replicas: 2\n"),
        "Pulumi.bad.yaml: slm-deploy:models[0].replicas: key 'replicas' is repeated in one mapping (first at line 8)",
    ),
    "recursive-alias": (
        "config:\n  slm-deploy:environment: dev\n  slm-deploy:labels: &loop {a: *loop}\n",
        "slm-deploy:labels.a: alias '*loop' repeats a node that contains it",
    ),
    # --- sizing: the key that caused it --------------------------------------------------------------------------
    "sizing-context-beyond-the-model": (
        stack_text(
            "\n    - name: small\n      engine: vllm\n      catalog: qwen3-0.6b\n"
            "      gpu: {count: 1, vmSize: Standard_NC4as_T4_v3}\n      sizing: {context: 100000}\n"
        ),
        "slm-deploy:models[0].sizing.context: 100000 exceeds the model's native context length 32768",
    ),
    "sizing-without-architecture": (
        stack_text(GOOD_MODEL + "      sizing: {context: 4096}\n"),
        "slm-deploy:models[0].sizing: sizes from the model's architecture: set catalog",
    ),
    "sizing-too-big-for-any-gpu": (
        stack_text(
            "\n    - name: big\n      engine: vllm\n      catalog: qwen3-14b\n      gpu: {count: 1}\n"
            "      sizing: {context: 32000, concurrency: 64}\n"
        ),
        "slm-deploy:models[0].sizing: big (bf16, context 32000, 64 sequences) needs",
    ),
    # --- conflicts ----------------------------------------------------------------------------------------------
    "replicas-with-autoscaling": (
        stack_text(
            GOOD_MODEL + "      replicas: 3\n      autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 4}\n"
            "      cache: {accessMode: ReadWriteMany}\n"
        ),
        "slm-deploy:models[0].replicas: is set, but slm-deploy:models[0].autoscaling.enabled is true",
    ),
    # --- scale to zero (docs/scale-to-zero.md) -----------------------------------------------------------------
    "zero-replicas-without-an-interceptor": (
        stack_text(
            GOOD_MODEL + "      autoscaling: {enabled: true, minReplicas: 0, maxReplicas: 1}\n",
        ),
        "slm-deploy:models[0].autoscaling: minReplicas 0 without scaleToZero.enabled: nothing would hold the first "
        "request after idle",
    ),
    "scale-to-zero-with-a-floor": (
        stack_text(
            GOOD_MODEL
            + "      autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 1, scaleToZero: {enabled: true}}\n",
        ),
        "slm-deploy:models[0].autoscaling: scaleToZero.enabled needs minReplicas 0 (got 1)",
    ),
    "scale-to-zero-wake-timeout-too-short": (
        stack_text(
            GOOD_MODEL + "      autoscaling: {enabled: true, minReplicas: 0, maxReplicas: 1, "
            "scaleToZero: {enabled: true, wakeTimeoutSeconds: 5}}\n",
        ),
        "slm-deploy:models[0].autoscaling.scaleToZero.wakeTimeoutSeconds: must be at least 10, got 5",
    ),
    "scale-to-zero-behind-a-shorter-gateway": (
        stack_text(
            GOOD_MODEL
            + "      autoscaling: {enabled: true, minReplicas: 0, maxReplicas: 1, scaleToZero: {enabled: true}}\n",
            extra="  slm-deploy:entryPoint: {enabled: true, hostname: llm.example.com, "
            "tls: {secretName: llm-tls}, requestTimeout: 300s}\n",
        ),
        "slm-deploy:models[0].autoscaling.scaleToZero.wakeTimeoutSeconds: the interceptor would hold the first "
        "request up to 1800s (default: startupTimeoutSeconds), but the gateway gives up after "
        "entryPoint.requestTimeout 300s",
    ),
    "extra-args-repeat-the-port": (
        stack_text(GOOD_MODEL + "      vllm: {extraArgs: ['--enable-prefix-caching', '--port=9000']}\n"),
        "slm-deploy:models[0].vllm.extraArgs[1]: '--port=9000' sets --port, which the engine sets already from "
        "slm-deploy:models[0].engine",
    ),
    "extra-args-contradict-sizing": (
        stack_text(
            "\n    - name: small\n      engine: vllm\n      catalog: qwen3-0.6b\n"
            "      gpu: {count: 1, vmSize: Standard_NC4as_T4_v3}\n      sizing: {context: 4096}\n"
            "      vllm: {extraArgs: ['--max_model_len', '8192']}\n"
        ),
        "slm-deploy:models[0].vllm.extraArgs[0]: '--max_model_len' sets --max-model-len, which the engine sets "
        "already from slm-deploy:models[0].sizing.context",
    ),
    "extra-args-contradict-max-model-len": (
        stack_text(GOOD_MODEL + "      vllm: {maxModelLen: 4096, extraArgs: ['--max-model-len=8192']}\n"),
        "which the engine sets already from slm-deploy:models[0].vllm.maxModelLen",
    ),
    "extra-args-served-model-name": (
        stack_text(GOOD_MODEL + "      servedModelName: qwen\n      vllm: {extraArgs: ['--served-model-name=q']}\n"),
        "which the engine sets already from slm-deploy:models[0].servedModelName",
    ),
    "extra-args-tensor-parallel-alias": (
        stack_text(GOOD_MODEL + "      vllm: {extraArgs: ['-tp', '2']}\n"),
        "'-tp' sets --tensor-parallel-size, which the engine sets already from slm-deploy:models[0].gpu.count",
    ),
    "extra-args-api-key": (
        stack_text(GOOD_MODEL + "      vllm: {extraArgs: ['--api-key=sk-123']}\n"),
        "slm-deploy:models[0].vllm.extraArgs[0]: --api-key would put an API key in the container's arguments",
    ),
    "extra-args-model": (
        stack_text(GOOD_MODEL + "      vllm: {extraArgs: ['--model', 'Qwen/Qwen3-8B']}\n"),
        "which the engine sets already from slm-deploy:models[0].modelId",
    ),
    "duplicate-receiver-names": (
        stack_text(
            extra="  slm-deploy:secrets:\n    a: {secure: v1:a}\n    b: {secure: v1:b}\n"
            "  slm-deploy:monitoring:\n    receivers:\n      - {name: ops, type: slack, urlSecret: a}\n"
            "      - {name: ops, type: webhook, urlSecret: b}\n"
        ),
        "slm-deploy:monitoring.receivers[1].name: receiver name 'ops' is already used by monitoring.receivers[0]",
    ),
    # --- Ollama's Modelfile -------------------------------------------------------------------------------------
    "modelfile-system-prompt-injection": (
        stack_text(
            "\n    - name: chat\n      engine: ollama\n      modelId: qwen3:0.6b\n      ollama:\n"
            '        modelfile:\n          system: |\n            Be brief."""\n            FROM evil/model\n'
            '            ADAPTER /models/evil.gguf\n            SYSTEM """x\n'
        ),
        'slm-deploy:models[0].ollama.modelfile.system: the system prompt contains """, which ends a Modelfile string',
    ),
    "modelfile-stop-string-injection": (
        stack_text(
            "\n    - name: chat\n      engine: ollama\n      modelId: qwen3:0.6b\n      ollama:\n"
            '        modelfile: {parameters: {stop: \'a"""\'}}\n'
        ),
        'slm-deploy:models[0].ollama.modelfile.parameters: parameter stop contains """',
    ),
    "modelfile-parameter-type": (
        stack_text(
            "\n    - name: chat\n      engine: ollama\n      modelId: qwen3:0.6b\n      ollama:\n"
            "        modelfile: {parameters: {num_ctx: big}}\n"
        ),
        "slm-deploy:models[0].ollama.modelfile.parameters: parameter num_ctx: expected an integer",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_stack_file_gives_one_clear_error(case: str, stack_dir: Path) -> None:
    text, expected = CASES[case]
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(text)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(stack_dir)])
    assert time.monotonic() - started < 2
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Pulumi.bad.yaml: " in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in result.output


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """A stack file of under a kilobyte whose aliases expand to ``width ** levels`` strings (387 million here)."""
    lines = [
        "config:",
        "  slm-deploy:environment: dev",
        "  slm-deploy:labels:",
        "    l0: &l0 [" + ", ".join(["lol"] * width) + "]",
    ]
    for level in range(1, levels):
        lines.append(f"    l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    lines.append("  slm-deploy:models:\n    - {name: chat, engine: vllm, modelId: Qwen/Qwen3-0.6B, gpu: {count: 1}}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_within_a_second_and_bounded_memory(stack_dir: Path) -> None:
    text = billion_laughs()
    assert len(text) < 1024
    (stack_dir / "stacks" / "Pulumi.bomb.yaml").write_text(text)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(StackConfigError) as caught:
            load_stack_file(stack_dir / "stacks" / "Pulumi.bomb.yaml")
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1, elapsed
    assert peak < 20 * 2**20, peak
    message = str(caught.value)
    assert "Pulumi.bomb.yaml: slm-deploy:labels.l" in message
    assert "expands to more than 100000 YAML nodes" in message
    assert "\n" not in message


#: Runs the console script and prints its exit status, peak memory (KiB) and CPU seconds. A small parent of
#: its own: Linux carries a forking process's memory high-water mark into the child's ``ru_maxrss``, so a
#: child forked straight from this (large) test process would report this process's size.
_MEASURE = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=sys.stderr)
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime]))
"""


def run_measured(*args: str) -> tuple[int, str, float, int]:
    """Exit status, output, CPU seconds and peak memory (KiB) of one run of the console script."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(Path(sys.executable).parent / "slm-deploy"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    code, peak_kib, seconds = json.loads(done.stdout)
    return code, done.stderr, seconds, peak_kib


def test_an_alias_bomb_through_the_console_script(stack_dir: Path) -> None:
    (stack_dir / "stacks" / "Pulumi.bomb.yaml").write_text(billion_laughs(levels=12))
    code, printed, seconds, peak_kib = run_measured("plan", "--stack", "bomb", "--root", str(stack_dir))
    # CPU time: a loaded test machine stretches wall time, not work done.
    assert seconds < 2, seconds
    # The same memory as any short run of the CLI (its imports), not the expansion's gigabytes.
    assert peak_kib < 300 * 1024, peak_kib
    assert code == 2
    (line,) = printed.strip().splitlines()
    assert "Pulumi.bomb.yaml: slm-deploy:labels.l" in line and "alias bomb" in line
    assert "Traceback" not in printed


def test_deep_nesting_and_huge_files_are_refused(stack_dir: Path) -> None:
    deep = "config:\n  slm-deploy:environment: dev\n  slm-deploy:labels: " + "[" * 200 + "]" * 200 + "\n"
    (stack_dir / "stacks" / "Pulumi.deep.yaml").write_text(deep)
    with pytest.raises(StackConfigError, match="nests deeper than 64 levels"):
        load_stack_file(stack_dir / "stacks" / "Pulumi.deep.yaml")
    big = stack_text() + "# " + "x" * (5 * 2**20) + "\n"
    (stack_dir / "stacks" / "Pulumi.big.yaml").write_text(big)
    with pytest.raises(StackConfigError, match="more than a stack file may be"):
        load_stack_file(stack_dir / "stacks" / "Pulumi.big.yaml")


def test_extra_args_and_replicas_through_the_console_script(stack_dir: Path) -> None:
    text, expected = CASES["extra-args-repeat-the-port"]
    (stack_dir / "stacks" / "Pulumi.args.yaml").write_text(text)
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "slm-deploy"), "validate", "--stack", "args", "--root", str(stack_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    (line,) = completed.stderr.strip().splitlines()
    assert expected in line
    assert "Traceback" not in completed.stdout + completed.stderr


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
        "error: stacks/Pulumi.bad.yaml: slm-deploy:models[1].engine: unknown engine 'vlm' (did you mean 'vllm'? "
        "expected vllm, ollama, onnx, llamacpp)"
    )
    assert "Traceback" not in completed.stdout + completed.stderr
    assert not out.exists()
