"""A prod stack with the chat UI on, its secrets (canaries) and how to plan it, for the chat UI tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: Canary secret values: none may appear in any render, report or message.
CHAT_KEY = "chat-ui-canary-key-5f2d8c1a9e"
TEAM_KEY = "team-a-canary-key-0b7e4d21c3"
SESSION = "chat-session-canary-7a1f0e9d3c5b2a8e4f60"
CANARIES = (CHAT_KEY, TEAM_KEY, SESSION)
#: Test data, not a published digest: prod requires a digest, the tests never pull the image.
TEST_DIGEST = "sha256:" + "0" * 64
VLLM_DIGEST = "sha256:1d6866b87630d94f5e0cdae55ab5abb4ce0b03fcb84d9d10612f9d518d19d4fd"
CIPHERTEXT = "{secure: v1:c2FsdA==:bm90LWEtcmVhbC1jaXBoZXJ0ZXh0}"

ENTRY_POINT = """  slm-deploy:entryPoint:
    enabled: true
    hostname: llm.example.com
    installController: true
    tls:
      issuerRef: {name: corp-internal-ca, kind: ClusterIssuer}
    apiKeys: gatewayKeys
"""
CHAT_UI = """  slm-deploy:chatUi:
    enabled: true
    hostname: chat.example.com
    apiKeyClient: chat-ui
    sessionSecret: chatSession
    caConfigMap: corp-ca
    image:
      repository: ghcr.io/open-webui/open-webui
      tag: "0.7.2"
      digest: {digest}
"""
#: One replica (SQLite on a ReadWriteOnce volume): prod's min-replicas rule needs a waiver, visible in reports.
WAIVER = """  slm-deploy:waivers:
    - policy: min-replicas
      resource: chat-ui-deployment
      reason: Open WebUI keeps its users and chats in SQLite on one ReadWriteOnce volume, so one writer
      owner: ml-platform@example.com
      expires: "2027-01-31"
"""
MODELS = """  slm-deploy:models:
    - name: qwen3
      engine: vllm
      modelId: Qwen/Qwen3-4B
      replicas: 2
      gpu: {{count: 1}}
      image: {{repository: vllm/vllm-openai, tag: v0.14.0, digest: {vllm}}}
      cache: {{accessMode: ReadWriteMany, storageClass: azurefile-csi-premium}}
    - name: phi
      engine: vllm
      modelId: microsoft/Phi-4-mini-instruct
      replicas: 2
      gpu: {{count: 1}}
      image: {{repository: vllm/vllm-openai, tag: v0.14.0, digest: {vllm}}}
      cache: {{accessMode: ReadWriteMany, storageClass: azurefile-csi-premium}}
"""


def stack_text(chat_ui: str | None = None, entry_point: str = ENTRY_POINT, waivers: str = WAIVER) -> str:
    chat = CHAT_UI.format(digest=TEST_DIGEST) if chat_ui is None else chat_ui
    return (
        "config:\n  slm-deploy:environment: prod\n"
        f"  slm-deploy:secrets:\n    gatewayKeys: {CIPHERTEXT}\n    chatSession: {CIPHERTEXT}\n"
        f"{entry_point}{chat}{waivers}{MODELS.format(vllm=VLLM_DIGEST)}"
    )


def write_stack(directory: Path, monkeypatch: pytest.MonkeyPatch, text: str | None = None, name: str = "prod") -> str:
    """Write the stack as ``Pulumi.<name>.yaml`` and give its secrets, as the CLI would after decrypting them."""
    (directory / "stacks" / f"Pulumi.{name}.yaml").write_text(stack_text() if text is None else text)
    secrets = {"gatewayKeys": json.dumps({"team-a": TEAM_KEY, "chat-ui": CHAT_KEY}), "chatSession": SESSION}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"slm-deploy:secrets": json.dumps(secrets)}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["slm-deploy:secrets"]))
    return name
