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


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_is_refused_and_visible(variant: str, tmp_path: Path, reference_render: Path) -> None:
    edit, expected = VARIANTS[variant]
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
    _, rule, resource = expected
    checked = runner.invoke(app, ["check", "--stack", "prod", "--format", "json", *root])
    assert checked.exit_code == 1, checked.output
    violations = [
        result
        for result in json.loads(checked.output)["results"]
        if result["status"] == "violation" and result["enforcementLevel"] == "mandatory"
    ]
    assert any(
        v["policyName"] == rule and resource in f"{v.get('resourceName')} {v['message']}" for v in violations
    ), violations
