"""Report renderers: SARIF structure, JUnit XML, Markdown cap, JSON and text."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from infra.policy.analyzer import run_policy_pack
from infra.policy.fixtures import resources_from
from infra.policy.model import PolicyReport, PolicyResult, WaiverInfo
from infra.policy.reports import (
    escape_markdown,
    render_json,
    render_junit,
    render_markdown,
    render_sarif,
    render_text,
    truncate_markdown,
)

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


# --------------------------------------------------------------------------- hostile strings

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "@org/team",
    "[click](https://evil)",
    "![x](https://evil/x.png)",
    "| broken | table",
    "back`tick`s ``and`` more`",
    "`",
    "line one\nline two\r\n\n| --- |",
    "www.evil.example and https://evil.example/path",
    "**bold** _em_ ~~gone~~ $x^2$",
    "<details><summary>open",
    "a\\|b\\\\|c",
    "&lt;img src=x&gt; &#64;org",
    "1. a list\n- another",
    "\u202eevil\u202c text",
]


def _markdown_html(text: str) -> str:
    """What a CommonMark + GFM tables renderer makes of ``text`` (raw HTML passed through, as GitHub
    would before sanitising: any tag in the output came from the input)."""
    markdown_it = pytest.importorskip("markdown_it")
    return str(markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text))


def _assert_inert(html: str) -> None:
    tags = {t.lower() for t in re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html)}
    assert tags <= {"table", "thead", "tbody", "tr", "th", "td", "p", "code", "h3", "blockquote", "strong"}, tags
    # GitHub links mentions and bare URLs in text, never inside code spans.
    text = re.sub(r"<[^>]+>", "", re.sub(r"<code>.*?</code>", "", html, flags=re.S))
    assert not re.search(r"(?<![\w\u200b])@[A-Za-z0-9]", text), "a mention GitHub would link"
    assert "://" not in text and "www." not in text, "a bare URL GitHub would link"
    assert "\u202e" not in text


def _hostile_report() -> PolicyReport:
    results = [
        PolicyResult(
            policy_name="image-tag-pinned",
            rule_id="SLM-K8S-014",
            title="t",
            severity="high",
            enforcement_level="mandatory",
            status="violation",
            message=f"image {text} is not pinned",
            resource_urn=f"urn:pulumi:s::p::kubernetes:apps/v1:Deployment::{text}",
            resource_name=text,
        )
        for text in HOSTILE
    ] + [
        PolicyResult(
            policy_name="read-only-root-filesystem",
            rule_id="SLM-K8S-009",
            title="t",
            severity="medium",
            enforcement_level="mandatory",
            status="waived",
            message="writes to /opt",
            resource_name="chat",
            waiver=WaiverInfo("read-only-root-filesystem", "chat", reason=text, owner=text, expires="2027-01-31"),
        )
        for text in HOSTILE
    ]
    return PolicyReport("slm-deploy", "0.1.0", "prod.json", "@org/team", "<img src=x>", [], results, level="prod")


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_markdown_contexts(text: str) -> None:
    for context in ("text", "code", "html"):
        escaped = escape_markdown(text, context)  # type: ignore[arg-type]
        assert "\n" not in escaped and "\r" not in escaped
        if context != "code":
            assert "<" not in escaped and ">" not in escaped
    # One table row per value, whatever it holds: no cell breaks out.
    row = f"| {escape_markdown(text)} | {escape_markdown(text, 'code')} |"
    html = _markdown_html("| a | b |\n| --- | --- |\n" + row + "\n")
    assert html.count("<td>") == 2 and html.count("<tr>") == 2, html
    _assert_inert(html)
    plain = re.sub(r"<[^>]+>", "", html)
    cells = [c for c in re.findall(r"<td>(.*?)</td>", html, re.S)]
    shown = [__import__("html").unescape(re.sub(r"<[^>]+>", "", c)).replace("\u200b", "") for c in cells]
    expected = " ".join(text.replace("\u202e", "").replace("\u202c", "").split())
    assert shown == [expected, expected], (shown, plain)


def test_markdown_report_is_safe_to_paste() -> None:
    report = _hostile_report()
    for text in (render_markdown(report), render_markdown([report, report])):
        html = _markdown_html(text)
        _assert_inert(html)
        for table in re.findall(r"<table>(.*?)</table>", html, re.S):
            rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
            header_cells = rows[0].count("<th>")
            assert all(row.count("<td>") == header_cells for row in rows[1:]), table
    findings_rows = [line for line in render_markdown(report).splitlines() if line.startswith("| ")]
    assert len(findings_rows) == 2 + 2 * len(HOSTILE)


def test_text_report_escapes_rich_markup() -> None:
    result = PolicyResult(
        "p", "ID-1", "t", "low", "advisory", "violation", "[bold red]shout[/] [link=https://evil]x[/link]"
    )
    text = render_text(PolicyReport("slm-deploy", "0.1.0", "c", None, "s", [], [result]))
    assert "[bold red]shout[/]" in " ".join(text.replace("│", " ").split())


# --------------------------------------------------------------------------- several stacks


def _stack(report: PolicyReport, stack: str, level: str) -> PolicyReport:
    return dataclasses.replace(report, stack=stack, level=level, binding=f"bound by name in {level}.json")


def test_several_stacks_merge_with_the_stack_on_every_result(report: PolicyReport) -> None:
    reports = [_stack(report, "dev", "dev"), _stack(report, "prod", "prod")]
    data = json.loads(render_json(reports))
    assert [s["stack"] for s in data["stacks"]] == ["dev", "prod"] and "results" not in data["stacks"][0]
    assert data["summary"]["mandatoryViolations"] == 2 * report.mandatory_violations
    assert {r["stack"] for r in data["results"]} == {"dev", "prod"}
    assert len(data["results"]) == 2 * len(report.results)
    (run,) = json.loads(render_sarif(reports))["runs"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert uris == {"stacks/Pulumi.dev.yaml", "stacks/Pulumi.prod.yaml"}
    assert [s["stack"] for s in run["properties"]["stacks"]] == ["dev", "prod"]
    junit = ET.fromstring(render_junit(reports))
    assert [s.get("name", "").split(":")[0] for s in junit.findall("testsuite")] == ["dev", "prod"]
    assert junit.get("failures") == "4"
    assert all(c.get("name", "").startswith(("dev: ", "prod: ")) for c in junit.iter("testcase"))
    md = render_markdown(reports)
    assert "failed for 2 stacks" in md and "| Stack | Status |" in md
    assert "| `dev` | `dev` | `prod` |" in md  # stack, bound level, declared environment
    text = render_text(reports)
    assert "total (2 stacks): 4 mandatory violation(s)" in text
    assert "stack dev: level dev (bound by name in dev.json), declares environment prod" in text


def test_a_single_report_names_its_stack_on_results(report: PolicyReport) -> None:
    data = json.loads(render_json(report))
    assert {r["stack"] for r in data["results"]} == {"prod"}
    assert render_json(report) == render_json([report])


def test_truncation_closes_open_details() -> None:
    text = "# head\n<details><summary>x</summary>\n\n" + "| a |\n" * 1000 + "\n</details>\n\nnext part\n"
    cut = truncate_markdown(text, 500, "\n> **Truncated**\n")
    assert len(cut) <= 500 and cut.endswith("> **Truncated**\n")
    assert cut.count("<details>") == cut.count("</details>") == 1
    assert all(line in ("", "| a |") or line.startswith(("#", "<", ">")) for line in cut.splitlines())
    assert truncate_markdown("short", 500, "x") == "short"


def test_reports_name_the_policies_that_judged_nothing(plan_of: Any) -> None:
    """A stack that brings its own cluster: the AKS rules have nothing to judge, and the report says so."""
    from infra.policy.analyzer import DEFAULT_PACK_DIR, run_policy_pack
    from infra.policy.pack_config import judge_stack
    from infra.policy.reports import render_markdown, render_text

    report = judge_stack(plan_of("dev", True), DEFAULT_PACK_DIR, run_policy_pack)
    reasons = {policy.name: reason for policy, reason in report.not_evaluated}
    assert reasons["aks-entra-id"] == "nothing in this stack it applies to"
    assert reasons["min-replicas"] == "disabled at this level"
    assert "namespace-pod-security" not in reasons
    assert "not evaluated (nothing in this stack it applies to): " in render_text(report)
    assert "SLM-AKS-001" in render_markdown(report)
    document = report.to_dict()
    assert document["summary"]["notEvaluated"] == len(document["notEvaluated"]) == len(reasons)
