"""Canary secret values planted in a stack never appear in any output, file, report or error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app

CANARY = "hf_CANARY_d1e8a0c4f7b2"
STACK = """config:
  slm-deploy:environment: prod
  slm-deploy:secretStore:
    backend: {backend}
{store}  slm-deploy:secrets:
    hfToken:
      secure: v1:c2FsdA==:bm90LWEtcmVhbC1jaXBoZXJ0ZXh0
  slm-deploy:models:
    - name: gated
      engine: vllm
      modelId: google/gemma-3-4b-it
      replicas: 2
      gpu: {{count: 1}}
      hfTokenSecret: hfToken
      cache: {{accessMode: ReadWriteMany}}
"""
KEY_VAULT = """    keyVault: {name: kv-slm-prod, resourceGroup: rg-slm, location: westeurope}
    oidcIssuerUrl: https://westeurope.oic.prod-aks.azure.com/tenant/issuer/
"""


@pytest.fixture(params=["kubernetes", "azure-keyvault"])
def canary_stack(request: pytest.FixtureRequest, stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = KEY_VAULT if request.param == "azure-keyvault" else ""
    (stack_dir / "stacks" / "Pulumi.canary.yaml").write_text(STACK.format(backend=request.param, store=store))
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"slm-deploy:secrets": json.dumps({"hfToken": CANARY})}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["slm-deploy:secrets"]))
    return stack_dir


def test_canary_never_appears(canary_stack: Path) -> None:
    runner = CliRunner()
    root = ["--root", str(canary_stack)]
    out = canary_stack / "out"
    commands = [
        ["validate", "--stack", "canary", *root],
        ["plan", "--stack", "canary", *root],
        ["plan", "--stack", "canary", *root, "--format", "json"],
        ["plan", "--stack", "canary", *root, "--format", "json", "--mode", "update"],
        ["plan", "--stack", "canary", *root, "--show", "network"],
        ["render", "--stack", "canary", *root, "--out", str(out / "render")],
        ["render", "--stack", "canary", *root, "--out", str(out / "render"), "--format", "json"],
    ]
    commands += [
        ["check", "--stack", "canary", *root, "--format", f, "--output", str(out / f"report.{f}")]
        for f in ("text", "json", "sarif", "junit", "markdown")
    ]
    commands += [["check", "--stack", "canary", *root, "--format", f] for f in ("text", "json")]
    printed = []
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code in (0, 1), (command, result.output)
        printed.append(result.output)
    assert all(CANARY not in text for text in printed)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10
    assert [p for p in files if CANARY in p.read_text(encoding="utf-8")] == []
    assert "[secret]" in "".join(printed)


def test_the_canary_reaches_the_program_as_a_secret(canary_stack: Path) -> None:
    from infra.plan.model import Secret
    from infra.plan.stack import plan_stack

    plan = plan_stack("canary", canary_stack, preview=False)
    carriers = [
        r
        for r in plan.run.resources
        if CANARY in repr([getattr(v, "value", None) for v in r.inputs.values() if isinstance(v, Secret)])
        or any(isinstance(v, Secret) and CANARY in json.dumps(v.value, default=str) for v in r.inputs.values())
    ]
    # The value is stored exactly once (a Kubernetes Secret or a Key Vault secret), always as a secret.
    assert len(carriers) == 1
    assert carriers[0].type in {"kubernetes:core/v1:Secret", "azure-native:keyvault:Secret"}


# --- errors never quote a secret, a secret map's keys, or anything read from a secret ---------------------------

API_KEY_STACK = """config:
  slm-deploy:environment: dev
  slm-deploy:secrets:
    apiKeys:
      secure: v1:c2FsdA==:bm90LWEtcmVhbC1jaXBoZXJ0ZXh0
  slm-deploy:entryPoint:
    enabled: true
    hostname: llm.example.com
    tls: {secretName: llm-tls}
    apiKeys: apiKeys
  slm-deploy:models:
    - {name: chat, engine: vllm, modelId: Qwen/Qwen3-0.6B, gpu: {count: 1}}
"""


def _secret_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({f"slm-deploy:{k}": v for k, v in values.items()}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps([f"slm-deploy:{k}" for k in values]))


def _one_line_error(stack_dir: Path, stack: str, *commands: str) -> list[str]:
    lines = []
    for command in commands or ("validate", "plan"):
        result = CliRunner().invoke(app, [command, "--stack", stack, "--root", str(stack_dir)])
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output
        (line,) = result.stderr.strip().splitlines()
        assert f"Pulumi.{stack}.yaml: " in line
        lines.append(line)
    return lines


@pytest.mark.parametrize(
    ("api_keys", "message"),
    [
        ("{" + CANARY + ": not json", "slm-deploy:secrets.apiKeys: is not JSON"),
        (json.dumps({f"{CANARY} client": "k" * 16}), "the 1st client name may use only letters"),
        (json.dumps({"ci": "k" * 16, CANARY: "k" * 16}), "the 1st and 2nd clients have the same key"),
        (json.dumps({CANARY: "short"}), "the key of the 1st client must be a string of at least 16 characters"),
        (json.dumps([CANARY]), "must be a non-empty JSON object of client name to key"),
    ],
    ids=["not-json", "bad-client-name", "shared-key", "short-key", "not-an-object"],
)
def test_an_api_key_secret_that_does_not_parse_is_one_line(
    api_keys: str, message: str, stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (stack_dir / "stacks" / "Pulumi.keys.yaml").write_text(API_KEY_STACK)
    _secret_env(monkeypatch, secrets=json.dumps({"apiKeys": api_keys}))
    for line in _one_line_error(stack_dir, "keys"):
        assert message in line
        assert CANARY not in line and "ci" not in line.split("secrets.apiKeys: ", 1)[1]


def test_a_secret_config_key_that_is_not_json_is_one_line(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (stack_dir / "stacks" / "Pulumi.keys.yaml").write_text(API_KEY_STACK)
    _secret_env(monkeypatch, secrets="{" + CANARY)
    for line in _one_line_error(stack_dir, "keys"):
        assert "slm-deploy:secrets: expected a mapping, got [secret]" in line
        assert CANARY not in line


def test_an_error_inside_a_whole_secret_names_only_its_key(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole of `labels` is a secret (encrypted as one value): its keys are as secret as its values.
    (stack_dir / "stacks" / "Pulumi.whole.yaml").write_text(
        "config:\n  slm-deploy:environment: dev\n  slm-deploy:labels:\n    secure: v1:AAAA\n"
        "  slm-deploy:models:\n    - {name: chat, engine: vllm, modelId: Qwen/Qwen3-0.6B, gpu: {count: 1}}\n"
    )
    _secret_env(monkeypatch, labels=json.dumps({f"{CANARY}/team": "ml", "tier": f"{CANARY} x"}))
    for line in _one_line_error(stack_dir, "whole"):
        assert "slm-deploy:labels: a value " in line
        assert line.endswith("; the value is a secret, so this error shows no part of it")
        assert CANARY not in line


def test_an_unknown_key_inside_a_whole_secret_is_not_named(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (stack_dir / "stacks" / "Pulumi.whole.yaml").write_text(
        "config:\n  slm-deploy:environment: dev\n  slm-deploy:network:\n    secure: v1:AAAA\n"
        "  slm-deploy:models:\n    - {name: chat, engine: vllm, modelId: Qwen/Qwen3-0.6B, gpu: {count: 1}}\n"
    )
    _secret_env(monkeypatch, network=json.dumps({CANARY: ["apps"]}))
    (line,) = _one_line_error(stack_dir, "whole", "validate")
    assert "slm-deploy:network: it has an unknown key; the value is a secret" in line
    assert CANARY not in line


def test_a_message_that_would_quote_a_secret_value_is_withheld(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A secret whose value happens to be what an error quotes (here a model's name): the error says where, not what.
    leaked = "7canary-d1e8a0c4"
    (stack_dir / "stacks" / "Pulumi.quote.yaml").write_text(
        "config:\n  slm-deploy:environment: dev\n  slm-deploy:secrets:\n    hfToken: {secure: v1:AAAA}\n"
        f"  slm-deploy:models:\n    - {{name: {leaked}, engine: vllm, modelId: Qwen/Qwen3-0.6B, gpu: {{count: 1}},"
        " hfTokenSecret: hfToken}\n"
    )
    _secret_env(monkeypatch, secrets=json.dumps({"hfToken": leaked}))
    (line,) = _one_line_error(stack_dir, "quote", "validate")
    assert "slm-deploy:models[0]: a value is refused; the value is a secret" in line
    assert leaked not in line
