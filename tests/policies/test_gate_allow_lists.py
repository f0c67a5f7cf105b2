"""Issue 24: the gate admits what it knows. The edits a reviewer tried on a copy of the prod stack are variants in
tests/policies/test_reviewer_variants.py; here: waivers cover exactly their subjects, the dev stack pointed at the
prod cluster is judged at prod, a change of target shows in ``diff``, cost fails closed."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from tests.conftest import ROOT
from tests.policies.test_reviewer_variants import Edit, _project, _set


def _check(project: Path, stack: str = "prod") -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["check", "--stack", stack, "--format", "json", "--root", str(project)])
    return result.exit_code, json.loads(result.stdout)


def test_a_waiver_covers_only_the_subject_it_names(tmp_path: Path) -> None:
    """A waiver of one flag on a server does not cover the next flag of the same rule on the same server."""

    def edit(config: dict[str, Any]) -> None:
        _set("models[0].vllm", {"extraArgs": ["--enable-sleep-mode", "--trust_remote_code"]})(config)
        config["slm-deploy:waivers"] = [
            {
                "policy": "engine-argument-allow-list",
                "resource": "phi4-mini-deployment",
                "subjects": ["--enable-sleep-mode"],
                "reason": "sleep mode frees the GPU between bursts",
                "owner": "platform-team",
                "expires": "2026-12-31",
            }
        ]

    project = _project(tmp_path, edit)
    code, report = _check(project)
    assert code == 1
    waived = [r for r in report["results"] if r["status"] == "waived"]
    assert [(r["policyName"], r["waiver"]["covers"]) for r in waived] == [
        ("engine-argument-allow-list", "subjects --enable-sleep-mode")
    ]
    assert "--enable-sleep-mode" in waived[0]["message"] and "trust" not in waived[0]["message"]
    blocking = {
        (r["policyName"], r["message"].rsplit("[subject: ", 1)[-1])
        for r in report["results"]
        if r["status"] == "violation" and r["enforcementLevel"] == "mandatory"
    }
    assert ("engine-argument-allow-list", "--trust-remote-code]") in blocking
    assert ("engine-arguments", "--trust-remote-code]") in blocking


def test_a_waiver_without_subjects_is_reported(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        _set("models[0].vllm", {"extraArgs": ["--enable-sleep-mode"]})(config)
        config["slm-deploy:waivers"] = [
            {
                "policy": "engine-argument-allow-list",
                "resource": "phi4-mini-deployment",
                "reason": "anything on this server",
                "owner": "platform-team",
                "expires": "2026-12-31",
            }
        ]

    code, report = _check(_project(tmp_path, edit))
    assert code == 1
    messages = [r["message"] for r in report["results"] if r["policyName"] == "waiver-validity"]
    assert any("names no subjects" in m for m in messages), messages
    assert not [r for r in report["results"] if r["status"] == "waived"]


def _dev_project(tmp_path: Path, context: str | None) -> Path:
    config = copy.deepcopy(yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"])
    if context is not None:
        config["slm-deploy:cluster"]["context"] = context
    (tmp_path / "stacks").mkdir(parents=True)
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    return tmp_path


def test_dev_stack_on_the_prod_cluster_is_judged_at_prod(tmp_path: Path) -> None:
    code, report = _check(_dev_project(tmp_path, "aks-slm-prod"), "dev")
    assert code == 1
    assert report["level"] == "prod" and "aks-slm-prod" in report["binding"]
    binding = [r for r in report["results"] if r["policyName"] == "environment-binding" and r["status"] == "violation"]
    assert binding and binding[0]["enforcementLevel"] == "mandatory"


@pytest.mark.parametrize("output_format", ["text", "json", "markdown"])
def test_a_change_of_context_shows_in_diff(output_format: str, tmp_path: Path) -> None:
    base = tmp_path / "base"
    rendered = CliRunner().invoke(app, ["render", "--stack", "dev", "--root", str(ROOT), "--out", str(base)])
    assert rendered.exit_code == 0, rendered.output
    project = _dev_project(tmp_path / "project", "team-dev-2")
    result = CliRunner().invoke(
        app, ["diff", "--stack", "dev", "--root", str(project), "--base", str(base), "--format", output_format]
    )
    assert result.exit_code == 1, result.output
    assert "team-dev-2" in result.output


def _public_with_chat_page(subjects: list[str]) -> dict[str, Any]:
    from infra.config.secrets import SecretValue
    from infra.config.stack import PUBLIC_PROXY_RESOURCE

    secret = SecretValue(ciphertext="v1:c2FsdA==:bm90LWEtcmVhbC1jaXBoZXJ0ZXh0")
    return {
        "environment": "prod",
        "secrets": {"chatKey": secret, "session": secret},
        "entryPoint": {
            "enabled": True,
            "hostname": "llm.example.com",
            "tls": {"issuerRef": {"name": "letsencrypt"}},
            "exposure": "public",
            "existingApiKeySecret": "keys",
        },
        "chatUi": {
            "enabled": True,
            "hostname": "chat.example.com",
            "apiKey": "chatKey",
            "sessionSecret": "session",
            "image": {"repository": "ghcr.io/open-webui/open-webui", "tag": "0.7.2", "digest": "sha256:" + "0" * 64},
        },
        "models": [
            {
                "name": "qwen",
                "engine": "vllm",
                "modelId": "Qwen/Qwen3-8B",
                "gpu": {"count": 1},
                "replicas": 2,
                "cache": {"accessMode": "ReadWriteMany"},
            }
        ],
        "waivers": [
            {
                "policy": "no-public-load-balancer",
                "resource": PUBLIC_PROXY_RESOURCE,
                "subjects": subjects,
                "reason": "a public API for partners",
                "owner": "platform-team",
                "expires": "2027-01-01",
            }
        ],
    }


def test_the_api_waiver_does_not_publish_the_chat_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.config.loader import StackConfigError, validate_stack_config

    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2026-12-07")
    with pytest.raises(StackConfigError, match=r"entryPoint\.exposure: .*subjects: \[chat-page\]"):
        validate_stack_config(_public_with_chat_page(["api"]), "Pulumi.prod.yaml")
    validate_stack_config(_public_with_chat_page(["api", "chat-page"]), "Pulumi.prod.yaml")


def test_one_helm_waiver_does_not_admit_the_dangerous_classes(tmp_path: Path) -> None:
    """The reviewer's "raise the scrape interval" waiver: auth proxy, Secrets RBAC, remote write and an ingress
    are each refused by rule, naming the value path."""

    def edit(config: dict[str, Any]) -> None:
        config["slm-deploy:monitoring"] = {
            **config["slm-deploy:monitoring"],
            "values": {
                "prometheus": {
                    "prometheusSpec": {
                        "scrapeInterval": "60s",
                        "remoteWrite": [{"url": "https://metrics.example.com/api/v1/write"}],
                    }
                },
                "grafana": {
                    "grafana.ini": {"auth.proxy": {"enabled": True}},
                    "rbac": {
                        "extraClusterRoleRules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
                    },
                    "ingress": {"enabled": True},
                },
            },
        }
        config["slm-deploy:waivers"] = [
            {
                "policy": "helm-raw-values",
                "resource": "monitoring-release",
                "values": ["prometheus.prometheusSpec"],
                "reason": "raise the scrape interval",
                "owner": "platform-team",
                "expires": "2026-12-31",
            }
        ]

    project = _project(tmp_path, edit)
    code, report = _check(project)
    assert code == 1
    blocking = {
        (r["policyName"], r["message"].rsplit("[subject: ", 1)[-1].removesuffix("]"))
        for r in report["results"]
        if r["status"] == "violation" and r["enforcementLevel"] == "mandatory"
    }
    assert ("helm-dangerous-values", "grafana.rbac.extraClusterRoleRules") in blocking, blocking
    assert ("helm-dangerous-values", "prometheus.prometheusSpec.remoteWrite[0]") in blocking
    assert ("helm-dangerous-values", "grafana.ingress.enabled") in blocking
    assert ("helm-raw-values", "grafana.grafana.ini.auth.proxy.enabled") in blocking
    assert any(
        p == "helm-grafana-authentication" and "auth.proxy" in m
        for p, m in blocking
        | {(r["policyName"], r["message"]) for r in report["results"] if r["status"] == "violation"}
    )
    waived = [r for r in report["results"] if r["status"] == "waived"]
    assert [r["policyName"] for r in waived] == ["helm-raw-values"]
    assert "remoteWrite" in waived[0]["message"] and "grafana" not in waived[0]["message"]


def _pool(**pool: Any) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        pools = config["slm-deploy:cluster"]["gpuPools"]
        for index, existing in enumerate(pools):
            if existing["name"] == pool["name"]:
                pools[index] = {**existing, **pool}
                return
        pools.append({"minCount": 2, "zones": ["1", "2", "3"], **pool})

    return edit


def test_a_pool_the_price_table_lacks_is_refused(tmp_path: Path) -> None:
    edit = _pool(name="h100", vmSize="Standard_NC40ads_H100_v5", maxCount=40)
    code, report = _check(_project(tmp_path, edit))
    assert code == 1
    unpriced = [r for r in report["results"] if r["policyName"] == "cost-unpriced" and r["status"] == "violation"]
    assert unpriced and all(r["enforcementLevel"] == "mandatory" for r in unpriced)
    assert any("Standard_NC40ads_H100_v5" in r["message"] and "westeurope" in r["message"] for r in unpriced)


def test_a_region_the_price_table_lacks_is_refused(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["slm-deploy:cluster"]["location"] = "newzealandnorth"
        _pool(name="a100", maxCount=300)(config)

    validated = CliRunner().invoke(app, ["validate", "--stack", "prod", "--root", str(_project(tmp_path, edit))])
    if validated.exit_code == 2:  # the stack config refuses the region outright: refused, and named
        assert "slm-deploy:cluster" in validated.output
        return
    code, report = _check(tmp_path)
    assert code == 1
    unpriced = [r for r in report["results"] if r["policyName"] == "cost-unpriced" and r["status"] == "violation"]
    assert any("newzealandnorth" in r["message"] for r in unpriced), [r["message"] for r in unpriced]


def test_a_budget_waiver_covers_up_to_its_amount(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        _pool(name="a100", maxCount=120)(config)
        config["slm-deploy:waivers"] = [
            {
                "policy": "monthly-budget",
                "resource": "aks-cluster-cluster",
                "maxMonthlyUsd": 40000,
                "reason": "launch month",
                "owner": "finops",
                "expires": "2026-12-31",
            },
            {
                "policy": "monthly-budget",
                "resource": "aks-cluster-cluster",
                "reason": "any amount",
                "owner": "finops",
                "expires": "2026-12-31",
            },
        ]

    code, report = _check(_project(tmp_path, edit))
    assert code == 1
    budget = [r for r in report["results"] if r["policyName"] == "monthly-budget"]
    assert [r["status"] for r in budget] == ["violation"], budget
    assert budget[0]["enforcementLevel"] == "mandatory" and "[amount: " in budget[0]["message"]
    validity = [r["message"] for r in report["results"] if r["policyName"] == "waiver-validity"]
    assert any("states no maxMonthlyUsd" in m for m in validity), validity


def test_a_waiver_whose_subjects_cover_nothing_is_stale(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["slm-deploy:waivers"] = [
            {
                "policy": "engine-argument-allow-list",
                "resource": "phi4-mini-deployment",
                "subjects": ["--enable-sleep-mode"],
                "reason": "kept from an earlier change",
                "owner": "platform-team",
                "expires": "2026-12-31",
            }
        ]

    code, report = _check(_project(tmp_path, edit))
    assert code == 1
    messages = [r["message"] for r in report["results"] if r["policyName"] == "waiver-validity"]
    assert any("covers no finding of this run: it is stale" in m for m in messages), messages


def test_a_stated_reason_admits_servers_that_check_no_key(tmp_path: Path) -> None:
    """Keys checked at the gateway alone, and every model saying why `apps` may call it without one: admitted."""

    def edit(config: dict[str, Any]) -> None:
        config["slm-deploy:entryPoint"]["modelsCheckKeys"] = False
        for model in config["slm-deploy:models"]:
            model["directAccess"] = {"unauthenticatedReason": "apps is the batch scorer; its mesh policy holds the key"}

    code, report = _check(_project(tmp_path, edit))
    results = [r for r in report["results"] if r["policyName"] == "model-servers-check-keys"]
    assert code == 0, [r["message"] for r in results if r["status"] == "violation"]
    assert results and {r["status"] for r in results} == {"pass"}
