"""One waiver matcher for every use: the same table gives the same answers in the stack config's check,
in the checkov skip annotations of the render, and in the policy pack."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from infra.config.loader import StackConfigError, validate_stack_config
from infra.config.stack import PUBLIC_PROXY_RESOURCE
from infra.plan.render import manifests
from infra.policy.analyzer import run_policy_pack
from infra.policy.fixtures import resources_from
from policies.lib.waivers import checkov_skip_annotations, parse
from policies.registry import CHECKOV_IDS, RULES_BY_NAME

TODAY = datetime.date(2026, 1, 15)
PROXY_URN = (
    "urn:pulumi:test::slm-deploy::slm-deploy:network:EntryPoint$"
    f"kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy::{PUBLIC_PROXY_RESOURCE}"
)

#: (how the policy is named, how the resource is named, expiry relative to today) → does the waiver apply?
TABLE: list[tuple[str, str, int, bool]] = [
    ("name", "name", 30, True),
    ("id", "name", 30, True),
    ("id-lower", "name", 30, True),
    ("name-upper", "name", 30, True),
    ("name", "urn", 30, True),
    ("name", "name", 1, True),
    # ``expires`` is the first day the waiver no longer applies.
    ("name", "name", 0, False),
    ("name", "name", -1, False),
    ("other-policy", "name", 30, False),
    ("name", "other-resource", 30, False),
]


def entry(rule_name: str, resource: str, urn: str, row: tuple[str, str, int, bool]) -> dict[str, str]:
    policy_form, resource_form, days, _ = row
    rule = RULES_BY_NAME[rule_name]
    policy = {
        "name": rule.name,
        "id": rule.id,
        "id-lower": rule.id.lower(),
        "name-upper": rule.name.upper(),
        "other-policy": "no-privileged-containers",
    }[policy_form]
    target = {"name": resource, "urn": urn, "other-resource": "something-else"}[resource_form]
    return {
        "policy": policy,
        "resource": target,
        "reason": "accepted for the test",
        "owner": "platform-team",
        "expires": (TODAY + datetime.timedelta(days=days)).isoformat(),
    }


ROWS = pytest.mark.parametrize("row", TABLE, ids=[f"{p}-{r}-{d:+d}d" for p, r, d, _ in TABLE])


@ROWS
def test_stack_config(row: tuple[str, str, int, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """A public load balancer in prod validates only with a waiver in force for its EnvoyProxy."""
    monkeypatch.setenv("SLM_DEPLOY_TODAY", TODAY.isoformat())
    stack: dict[str, Any] = {
        "environment": "prod",
        "secrets": {},
        "entryPoint": {
            "enabled": True,
            "hostname": "llm.example.com",
            "tls": {"issuerRef": {"name": "letsencrypt"}},
            "exposure": "public",
            "existingApiKeySecret": "keys",
        },
        "models": [
            {
                "name": "chat",
                "engine": "vllm",
                "modelId": "Qwen/Qwen3-8B",
                "gpu": {"count": 1},
                "replicas": 2,
                "cache": {"accessMode": "ReadWriteMany"},
            }
        ],
        "waivers": [{**entry("no-public-load-balancer", PUBLIC_PROXY_RESOURCE, PROXY_URN, row), "subjects": ["api"]}],
    }
    if row[-1]:
        validate_stack_config(stack, "test")
    else:
        with pytest.raises(StackConfigError, match="needs a waiver in force"):
            validate_stack_config(stack, "test")


DEPLOYMENT: list[dict[str, Any]] = [
    {
        "type": "kubernetes:apps/v1:Deployment",
        "name": "chat-deployment",
        "props": {
            "metadata": {"namespace": "models"},
            "spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.9.2"}]}}},
        },
    }
]


@ROWS
def test_checkov_skip_annotations(row: tuple[str, str, int, bool]) -> None:
    resources = resources_from(DEPLOYMENT)
    (deployment,) = resources
    waivers, problems = parse([entry("read-only-root-filesystem", deployment.name, deployment.urn, row)])
    assert problems == []
    (manifest,) = manifests(resources, checkov_skip_annotations(waivers, CHECKOV_IDS, TODAY))
    annotations = manifest.document["metadata"].get("annotations", {})
    assert any(value.startswith("CKV_K8S_22=") for value in annotations.values()) is row[-1]


@ROWS
def test_policy_pack(row: tuple[str, str, int, bool]) -> None:
    resources = resources_from(DEPLOYMENT)
    (deployment,) = resources
    waiver = entry("read-only-root-filesystem", deployment.name, deployment.urn, row)
    config = {"all": "disabled", "waived-results": "advisory", "read-only-root-filesystem": "mandatory"}
    report = run_policy_pack(
        resources, config, {"environment": "prod", "waivers": [waiver], "today": TODAY.isoformat()}
    )
    assert (report.mandatory_violations == 0) is row[-1]
    assert bool(report.waived) is row[-1]
