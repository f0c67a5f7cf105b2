"""Insecure variants of the prod stack, written as a reviewer would try them: each is refused.

Either ``validate`` exits 2 with one line naming the stack file and the key, or ``check --stack prod`` exits 1
naming the rule and the resource; and ``diff`` against the reference prod render shows the change (exit 1).
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from tests.conftest import ROOT

Edit = Callable[[dict[str, Any]], None]
PROD = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())["config"]


def _set(path: str, value: Any) -> Edit:
    """An edit that sets ``slm-deploy:<path>`` (dots and [index] below the top-level key)."""

    def edit(config: dict[str, Any]) -> None:
        top, *rest = path.replace("[", ".[").split(".")
        if not rest:
            config[f"slm-deploy:{top}"] = value
            return
        node: Any = config.setdefault(f"slm-deploy:{top}", {})
        for part, following in zip(rest, [*rest[1:], None], strict=True):
            key: Any = int(part[1:-1]) if part.startswith("[") else part
            if following is None:
                node[key] = value
            else:
                node = node[key] if isinstance(key, int) else node.setdefault(key, {})

    return edit


def _waiver(resource: str, expires: str) -> Edit:
    return _set(
        "waivers",
        [
            {
                "policy": "no-privileged-containers",
                "resource": resource,
                "reason": "accepted",
                "owner": "platform-team",
                "expires": expires,
            }
        ],
    )


#: id → (edit, ("validate", key path) | ("check", rule, resource) | ("diff", changed file)).
VARIANTS: dict[str, tuple[Edit, tuple[str, ...]]] = {
    "grafana-public-load-balancer": (
        _set("monitoring.values", {"grafana": {"service": {"type": "LoadBalancer"}}}),
        ("check", "helm-no-public-services", "monitoring-release"),
    ),
    "prometheus-node-port": (
        _set("monitoring.values", {"prometheus": {"service": {"type": "NodePort"}}}),
        ("check", "helm-no-public-services", "monitoring-release"),
    ),
    "prometheus-as-root": (
        _set("monitoring.values", {"prometheus": {"prometheusSpec": {"securityContext": {"runAsUser": 0}}}}),
        ("check", "helm-no-privileged-workloads", "monitoring-release"),
    ),
    "node-exporter-with-host-namespaces": (
        _set("monitoring.values", {"nodeExporter": {"enabled": True}}),
        ("check", "helm-no-privileged-workloads", "monitoring-release"),
    ),
    "grafana-anonymous": (
        _set("monitoring.values", {"grafana": {"grafana.ini": {"auth.anonymous": {"enabled": True}}}}),
        ("check", "helm-grafana-authentication", "monitoring-release"),
    ),
    "grafana-plaintext-admin": (
        _set("monitoring.values", {"grafana": {"adminPassword": "admin"}}),
        ("check", "helm-grafana-authentication", "monitoring-release"),
    ),
    "trust-remote-code": (
        _set("models[0].vllm", {"extraArgs": ["--trust-remote-code"]}),
        ("check", "engine-arguments", "phi4-mini-deployment"),
    ),
    "api-key-on-the-command-line": (
        _set("models[0].vllm", {"extraArgs": ["--api-key=sk-live-123"]}),
        ("validate", "slm-deploy:models[0].vllm.extraArgs[0]"),
    ),
    "download-from-anywhere": (
        _set("network", {"ingressFromNamespaces": ["apps"], "modelDownload": "allow", "downloadCidrs": ["0.0.0.0/0"]}),
        ("check", "egress-scope", "qwen3-8b-network-allow-model-download-egress"),
    ),
    "download-from-a-whole-tld": (
        _set("network.downloadHosts", ["huggingface.co", "*.co"]),
        ("check", "egress-scope", "qwen3-8b-network-allow-model-download-fqdn"),
    ),
    "waiver-for-ever": (
        _waiver("phi4-mini-deployment", "9999-12-31"),
        ("check", "waiver-validity", "expires on 9999-12-31"),
    ),
    "stale-waiver": (
        _waiver("retired-model-deployment", "2026-12-15"),
        ("check", "waiver-validity", "retired-model-deployment"),
    ),
    "pod-security-label-pinned-old": (
        _set("labels", {"cost-center": "ml", "pod-security.kubernetes.io/enforce-version": "v1.22"}),
        ("validate", "slm-deploy:labels"),
    ),
    "secret-pasted-into-the-model-name": (
        _set("models[0].servedModelName", "$(HF_TOKEN)"),
        ("validate", "slm-deploy:models[0].servedModelName"),
    ),
    "gpu-pool-grows": (
        _set("cluster.gpuPools[1].maxCount", 12),
        ("diff", "_azure-native/containerservice.AgentPool--aks-pool-a100-agent-pool.yaml"),
    ),
    # Shared GPUs (docs/shared-gpus.md): time slices share memory unisolated (the pack refuses them in prod), a model
    # must fit its MIG slice, and MIG needs an A100 or H100.
    "time-sliced-gpus": (
        _set("cluster.gpuPools[1].sharing", {"mode": "timeSlicing", "replicasPerGpu": 2}),
        ("check", "gpu-time-slicing", "qwen3-small"),
    ),
    "model-larger-than-its-mig-slice": (
        _set("cluster.gpuPools[1].sharing", {"mode": "mig", "profile": "MIG2g"}),
        ("validate", "slm-deploy:models[1].gpu.pool"),
    ),
    "mig-on-an-a10-pool": (
        _set("cluster.gpuPools[0].sharing", {"mode": "mig", "profile": "MIG1g"}),
        ("validate", "slm-deploy:cluster.gpuPools[0].sharing.mode"),
    ),
}


DIGEST = PROD["slm-deploy:models"][0]["image"]["digest"]
LLAMACPP_DIGEST = "sha256:" + "a" * 64


def _llamacpp(extra_args: list[str]) -> Edit:
    """Adds a llama.cpp model (CPU, pinned by digest) with these extra flags."""

    def edit(config: dict[str, Any]) -> None:
        config["slm-deploy:models"].append(
            {
                "name": "smollm2",
                "engine": "llamacpp",
                "modelId": "HuggingFaceTB/SmolLM2-135M-Instruct",
                "replicas": 2,
                "image": {"repository": "ghcr.io/ggml-org/llama.cpp", "tag": "server-b1", "digest": LLAMACPP_DIGEST},
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
                "cache": {"size": "2Gi", "storageClass": "azurefile-csi-premium", "accessMode": "ReadWriteMany"},
                "llamacpp": {
                    "gguf": {
                        "repo": "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
                        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                    },
                    "extraArgs": extra_args,
                },
            }
        )

    return edit


def _network(**changes: Any) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        config["slm-deploy:network"] = {**config["slm-deploy:network"], **changes}

    return edit


#: Issue 24's examples: ("check", rule, resource, subject) also names the finding's subject.
GATE_VARIANTS: dict[str, tuple[Edit, tuple[str, ...]]] = {
    "vllm-remote-code-underscore": (
        _set("models[0].vllm", {"extraArgs": ["--trust_remote_code"]}),
        ("check", "engine-arguments", "phi4-mini-deployment", "--trust-remote-code"),
    ),
    "vllm-local-media-path-underscore": (
        _set("models[0].vllm", {"extraArgs": ["--allowed_local_media_path=/"]}),
        ("check", "engine-argument-allow-list", "phi4-mini-deployment", "--allowed-local-media-path"),
    ),
    "vllm-unknown-flag": (
        _set("models[0].vllm", {"extraArgs": ["--enable-sleep-mode"]}),
        ("check", "engine-argument-allow-list", "phi4-mini-deployment", "--enable-sleep-mode"),
    ),
    "llamacpp-path": (
        _llamacpp(["--path", "/"]),
        ("check", "engine-arguments", "smollm2-deployment", "--path"),
    ),
    "llamacpp-model-url": (
        _llamacpp(["--model-url", "https://example.com/m.gguf"]),
        ("check", "engine-arguments", "smollm2-deployment", "--model-url"),
    ),
    "llamacpp-props": (
        _llamacpp(["--props"]),
        ("check", "engine-argument-allow-list", "smollm2-deployment", "--props"),
    ),
    "llamacpp-slot-save-path": (
        _llamacpp(["--slot_save_path", "/tmp"]),
        ("check", "engine-arguments", "smollm2-deployment", "--slot-save-path"),
    ),
    "egress-in-two-halves": (
        _network(policyEngine="kubernetes", downloadHosts=[], downloadCidrs=["0.0.0.0/1", "128.0.0.0/1"]),
        ("check", "egress-scope", "qwen3-8b-network-allow-model-download-egress", "0.0.0.0/1"),
    ),
    "fqdn-blob-storage": (
        _set("network.downloadHosts", ["huggingface.co", "*.blob.core.windows.net"]),
        ("check", "egress-scope", "qwen3-8b-network-allow-model-download-fqdn", "*.blob.core.windows.net"),
    ),
    "fqdn-second-level-domain": (
        _set("network.downloadHosts", ["huggingface.co", "*.co.uk"]),
        ("check", "egress-scope", "qwen3-8b-network-allow-model-download-fqdn", "*.co.uk"),
    ),
    "control-plane-label": (
        _set("labels", {"cost-center": "ml", "control-plane": "true"}),
        ("validate", "slm-deploy:labels"),
    ),
    "typosquatted-image": (
        _set(
            "models[0].image",
            {"repository": "docker.io/vllm-0penai/vllm-openai", "tag": "v0.14.0", "digest": DIGEST},
        ),
        ("check", "allowed-image-registries", "phi4-mini-deployment", "docker.io/vllm-0penai/vllm-openai"),
    ),
    # Weights in an image volume (docs/image-volume-weights.md): judged like the server's image, plus their own rule.
    "weights-image-from-another-registry": (
        _set(
            "models[0].weights.image",
            {"repository": "otheracr.azurecr.io/models/phi-4-mini-instruct", "tag": "2026.12.07", "digest": DIGEST},
        ),
        ("check", "allowed-image-registries", "phi4-mini-deployment", "otheracr.azurecr.io/models/phi-4-mini-instruct"),
    ),
    "weights-image-by-tag-only": (
        _set("models[0].weights.image", {"repository": "slmprod.azurecr.io/models/phi-4-mini-instruct", "tag": "v2"}),
        ("check", "image-volume-pinned", "phi4-mini-deployment", "weights"),
    ),
    "weights-image-pulled-always": (
        _set("models[0].weights.pullPolicy", "Always"),
        ("check", "image-volume-pinned", "phi4-mini-deployment", "weights"),
    ),
    "system-namespaces-in-front-of-vllm": (
        _set("network.ingressFromNamespaces", ["default", "kube-system"]),
        ("validate", "slm-deploy:network.ingressFromNamespaces[0]"),
    ),
    "monitoring-namespace-in-front-of-vllm": (
        _set("network.ingressFromNamespaces", ["apps", "monitoring"]),
        ("validate", "slm-deploy:network.ingressFromNamespaces[1]"),
    ),
}

#: Issue 24, item 4: a model server reachable from outside its namespace other than by the gateway checks keys, or
#: the stack says why not (directAccess.unauthenticatedReason).
DIRECT_ACCESS_VARIANTS: dict[str, tuple[Edit, tuple[str, ...]]] = {
    "vllm-reachable-from-apps-without-key": (
        _set("entryPoint.modelsCheckKeys", False),
        ("check", "model-servers-check-keys", "phi4-mini-deployment", "apps"),
    ),
    "reason-for-a-server-that-checks-keys": (
        _set("models[0].directAccess", {"unauthenticatedReason": "the apps team asked for it, twice"}),
        ("validate", "slm-deploy:models[0].directAccess.unauthenticatedReason"),
    ),
    "reason-too-short-to-say-anything": (
        _set("models[0].directAccess", {"unauthenticatedReason": "because"}),
        ("validate", "slm-deploy:models[0].directAccess.unauthenticatedReason"),
    ),
}
ALL_VARIANTS = {**VARIANTS, **GATE_VARIANTS, **DIRECT_ACCESS_VARIANTS}


@pytest.fixture(scope="module")
def reference_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "prod"
    result = CliRunner().invoke(app, ["render", "--stack", "prod", "--root", str(ROOT), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _project(tmp_path: Path, edit: Edit) -> Path:
    config = copy.deepcopy(PROD)
    edit(config)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    return tmp_path


@pytest.mark.parametrize("variant", sorted(ALL_VARIANTS))
def test_variant_is_refused_and_visible(variant: str, tmp_path: Path, reference_render: Path) -> None:
    edit, expected = ALL_VARIANTS[variant]
    project = _project(tmp_path, edit)
    root = ["--root", str(project)]
    runner = CliRunner()
    validated = runner.invoke(app, ["validate", "--stack", "prod", *root])
    diffed = runner.invoke(app, ["diff", "--stack", "prod", "--base", str(reference_render), "--format", "json", *root])
    if expected[0] == "validate":
        assert validated.exit_code == 2
        (line,) = validated.output.strip().splitlines()
        assert "Pulumi.prod.yaml" in line and expected[1] in line, line
        assert "Traceback" not in diffed.output and diffed.exit_code == 2
        return
    assert validated.exit_code == 0, validated.output
    assert diffed.exit_code == 1, diffed.output
    if expected[0] == "diff":
        assert expected[1] in diffed.output
        return
    rule, resource, *subject = expected[1:]
    checked = runner.invoke(app, ["check", "--stack", "prod", "--format", "json", *root])
    assert checked.exit_code == 1, checked.output
    violations = [
        result
        for result in json.loads(checked.output)["results"]
        if result["status"] == "violation" and result["enforcementLevel"] == "mandatory"
    ]
    assert any(
        v["policyName"] == rule
        and resource in f"{v.get('resourceName')} {v['message']}"
        and all(f"[subject: {s}]" in v["message"] for s in subject)
        for v in violations
    ), violations
