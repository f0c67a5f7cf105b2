"""Report renderers: SARIF structure, JUnit XML, Markdown cap, JSON and text."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from infra.policy.analyzer import run_policy_pack
from infra.policy.fixtures import resources_from
from infra.policy.model import PolicyReport, PolicyResult
from infra.policy.reports import render_json, render_junit, render_markdown, render_sarif, render_text

ENTRIES: list[dict[str, Any]] = [
    {
        "type": "kubernetes:apps/v1:Deployment",
        "name": "prod-qwen3-deployment",
        "props": {
            "metadata": {"namespace": "models"},
            "spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:latest"}]}}},
        },
    },
    {
        "type": "kubernetes:core/v1:ServiceAccount",
        "name": "prod-qwen3-sa",
        "props": {"metadata": {"namespace": "models"}},
    },
]
CONFIG = {
    "all": "disabled",
    "waived-results": "advisory",
    "image-tag-pinned": "mandatory",
    "read-only-root-filesystem": "advisory",
    "service-account-no-automount": "mandatory",
    "no-privileged-containers": "mandatory",
    "default-deny-network-policy": "mandatory",
}
WAIVERS = [
    {
        "policy": "service-account-no-automount",
        "resource": "prod-qwen3-sa",
        "reason": "legacy | client",
        "owner": "team-a",
        "expires": "2026-06-01",
    }
]


@pytest.fixture(scope="module")
def report() -> PolicyReport:
    return run_policy_pack(
        resources_from(ENTRIES),
        CONFIG,
        {"environment": "prod", "waivers": WAIVERS, "today": "2026-01-01"},
        stack="prod",
    )


def test_report_counts(report: PolicyReport) -> None:
    assert report.mandatory_violations == 2  # image tag + default deny
    assert report.advisory_violations == 1
    assert len(report.waived) == 1
    assert any(r.policy_name == "no-privileged-containers" for r in report.passes)


def test_sarif_structure(report: PolicyReport) -> None:
    sarif = json.loads(render_sarif(report, stack_file="stacks/Pulumi.<stack>.yaml"))
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"]
    assert all({"id", "shortDescription"} <= set(r) for r in rules)
    assert len({r["id"] for r in rules}) == len(rules)
    levels = {"none", "note", "warning", "error"}
    for result in run["results"]:
        assert result["message"]["text"]
        assert result["level"] in levels
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        (location,) = result["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == "stacks/Pulumi.prod.yaml"
        assert location["logicalLocations"][0]["fullyQualifiedName"]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert by_rule["SLM-K8S-014"]["level"] == "error"
    assert by_rule["SLM-K8S-009"]["level"] == "warning"
    assert by_rule["SLM-K8S-014"]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].startswith("urn:pulumi:")
    suppression = by_rule["SLM-K8S-017"]["suppressions"][0]
    assert suppression["kind"] == "external" and suppression["status"] == "accepted"
    assert "legacy | client" in suppression["justification"]


def test_junit_parses(report: PolicyReport) -> None:
    root = ET.fromstring(render_junit(report))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "0")) == len(cases)
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(failures) == int(suite.get("failures", "-1")) == 2
    (waived,) = skipped
    assert "legacy | client" in (waived.find("skipped").get("message") or "")  # type: ignore[union-attr]
    advisory = [c for c in cases if c.get("classname", "").startswith("SLM-K8S-009")]
    assert advisory and advisory[0].find("failure") is None and advisory[0].find("system-out") is not None
    strict = ET.fromstring(render_junit(report, advisory_as_failure=True)).find("testsuite")
    assert strict is not None and strict.get("failures") == "3"


def test_markdown_and_text_and_json(report: PolicyReport) -> None:
    md = render_markdown(report)
    assert "failed" in md and "SLM-K8S-014" in md and "legacy \\| client" in md
    text = render_text(report)
    assert "image-tag-pinned" in text and "2 mandatory violation(s)" in text
    data = json.loads(render_json(report))
    assert data["summary"]["mandatoryViolations"] == 2
    assert {r["status"] for r in data["results"]} >= {"violation", "waived", "pass"}


def test_markdown_truncates_at_the_cap() -> None:
    results = [
        PolicyResult(
            policy_name="read-only-root-filesystem",
            rule_id="SLM-K8S-009",
            title="t",
            severity="medium",
            enforcement_level="mandatory",
            status="violation",
            message="x" * 300,
            resource_urn=f"urn:pulumi:s::p::kubernetes:apps/v1:Deployment::d{i}",
            resource_name=f"d{i}",
        )
        for i in range(1000)
    ]
    big = PolicyReport("slm-deploy", "0.1.0", "prod.json", "prod", "prod", [], results)
    md = render_markdown(big)
    assert len(md) <= 65_000
    assert "Truncated" in md and "of 1000 findings shown" in md
    small = render_markdown(big, limit=2_000)
    assert len(small) <= 2_000 and "Truncated" in small
