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
