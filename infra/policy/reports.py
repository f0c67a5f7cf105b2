"""Render a :class:`~infra.policy.model.PolicyReport`: text, JSON, SARIF 2.1.0, JUnit XML, Markdown."""

from __future__ import annotations

import json
from typing import Any

from .model import PolicyReport, PolicyResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "slm-deploy-policy"
MARKDOWN_LIMIT = 65_000
_ORDER = {"violation": 0, "not-run": 1, "waived": 2, "pass": 3}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _findings(report: PolicyReport) -> list[PolicyResult]:
    """Everything but passes, most important first."""
    return sorted(
        (r for r in report.results if r.status != "pass"),
        key=lambda r: (_ORDER[r.status], not r.blocking, r.rule_id, r.resource_name or ""),
    )


def _target(result: PolicyResult) -> str:
    return result.resource_name or "(stack)"


def _summary(report: PolicyReport) -> str:
    return (
        f"{report.mandatory_violations} mandatory violation(s), {report.advisory_violations} advisory, "
        f"{len(report.waived)} waived, {len(report.not_run)} not run during preview, {len(report.passes)} passed"
    )


def render_text(report: PolicyReport, width: int = 140) -> str:
    """A rich table for terminals (returned as text)."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Policy pack {report.pack_name} v{report.pack_version} ({report.config_source})")
    for column in ("Status", "Level", "Rule", "Resource", "Message"):
        table.add_column(column, overflow="fold")
    styles = {"violation": "red", "waived": "yellow", "not-run": "cyan", "pass": "green"}
    for r in _findings(report):
        message = r.message
        if r.waiver is not None and r.status == "waived":
            message = f"{message}\nwaived until {r.waiver.expires} by {r.waiver.owner}: {r.waiver.reason}"
        table.add_row(
            f"[{styles[r.status]}]{r.status}[/]",
            r.enforcement_level,
            f"{r.rule_id} {r.policy_name}",
            _target(r),
            message,
        )
    buffer = StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    if table.row_count:
        console.print(table)
    console.print(_summary(report))
    return buffer.getvalue()


def render_json(report: PolicyReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False)


def _sarif_level(result: PolicyResult) -> str:
    if result.status == "violation":
        return "error" if result.blocking else "warning"
    if result.status == "pass":
        return "none"
    return "note"


def render_sarif(report: PolicyReport, stack_file: str = "stacks/Pulumi.<stack>.yaml") -> str:
    """SARIF 2.1.0: one rule per policy, one result per finding, located at ``stack_file`` (relative
    to the repository root) with the resource URN as a logical location. Waived results carry an
    accepted external suppression with the waiver's reason."""
    if "<stack>" in stack_file and report.stack:
        stack_file = stack_file.replace("<stack>", report.stack)
    rules = []
    index = {}
    for i, p in enumerate(report.policies):
        index[p.name] = i
        rules.append(
            {
                "id": p.rule_id,
                "name": p.name,
                "shortDescription": {"text": p.title},
                "fullDescription": {"text": p.rationale or p.title},
                "help": {"text": p.remediation or p.title},
                "defaultConfiguration": {
                    "level": "error" if p.enforcement_level == "mandatory" else "warning",
                    "enabled": p.enforcement_level != "disabled",
                },
                "properties": {
                    "severity": p.severity,
                    "enforcementLevel": p.enforcement_level,
                    "controls": p.controls,
                    "checkov": list(p.checkov),
                    "tags": ["security", p.severity, *p.checkov],
                },
            }
        )
    results = []
    for r in _findings(report):
        entry: dict[str, Any] = {
            "ruleId": r.rule_id or r.policy_name,
            "level": _sarif_level(r),
            "message": {"text": f"{_target(r)}: {r.message}" if r.message else _target(r)},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": stack_file}},
                    "logicalLocations": [
                        {
                            "name": r.resource_name or report.stack or "stack",
                            "fullyQualifiedName": r.resource_urn or f"stack:{report.stack or ''}",
                            "kind": "resource" if r.resource_urn else "module",
                        }
                    ],
                }
            ],
            "properties": {
                "status": r.status,
                "enforcementLevel": r.enforcement_level,
                "severity": r.severity,
                "resourceType": r.resource_type,
            },
        }
        if r.policy_name in index:
            entry["ruleIndex"] = index[r.policy_name]
        if r.status == "waived" and r.waiver is not None:
            entry["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": f"{r.waiver.reason} (owner {r.waiver.owner}, expires {r.waiver.expires})",
                }
            ]
        results.append(entry)
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": report.pack_version,
                        "rules": rules,
                    }
                },
                "results": results,
                "properties": {"configSource": report.config_source, "environment": report.environment},
            }
        ],
    }
    return json.dumps(sarif, indent=2)


def render_junit(report: PolicyReport, advisory_as_failure: bool = False) -> str:
    """JUnit XML: one testcase per (rule, resource) checked; a mandatory violation is a failure (an
    advisory one too with ``advisory_as_failure``), waived and not-run results are skipped."""
    import xml.etree.ElementTree as ET

    cases: dict[tuple[str, str | None], list[PolicyResult]] = {}
    for r in sorted(report.results, key=lambda r: (r.rule_id, r.resource_name or "")):
        cases.setdefault((r.policy_name, r.resource_urn), []).append(r)
    suite = ET.Element("testsuite", name=f"{report.pack_name} ({report.config_source})")
    failures = skipped = 0
    for (_policy, _urn), results in cases.items():
        first = results[0]
        case = ET.SubElement(suite, "testcase", classname=f"{first.rule_id} {first.policy_name}", name=_target(first))
        violations = [r for r in results if r.status == "violation"]
        failing = [r for r in violations if r.blocking or advisory_as_failure]
        if failing:
            failures += 1
            node = ET.SubElement(
                case,
                "failure",
                message=_one_line(failing[0].message)[:500],
                type=failing[0].enforcement_level,
            )
            node.text = "\n".join(r.message for r in failing)
        elif any(r.status in ("waived", "not-run") for r in results):
            skipped += 1
            r = next(r for r in results if r.status in ("waived", "not-run"))
            reason = (
                f"waived until {r.waiver.expires} by {r.waiver.owner}: {r.waiver.reason}"
                if r.status == "waived" and r.waiver
                else _one_line(r.message)
            )
            ET.SubElement(case, "skipped", message=reason[:500])
        if violations and not failing:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"advisory: {r.message}" for r in violations)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    root = ET.Element("testsuites", name="slm-deploy policy", tests=str(len(cases)), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")


def render_markdown(report: PolicyReport, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: summary, then violations, not-run and waived results; at most ``limit`` characters."""
    status = "passed" if report.ok else "failed"
    icon = ":white_check_mark:" if report.ok else ":x:"
    head = [
        f"### {icon} Policy pack `{report.pack_name}` {status}",
        "",
        f"Config `{report.config_source}`"
        + (f", environment `{report.environment}`" if report.environment else "")
        + f": {_summary(report)}.",
        "",
    ]
    rows = ["| Status | Level | Rule | Resource | Message |", "| --- | --- | --- | --- | --- |"]
    for r in _findings(report):
        message = r.message
        if r.status == "waived" and r.waiver is not None:
            message = f"{message} — waived until {r.waiver.expires} by {r.waiver.owner}: {r.waiver.reason}"
        rows.append(
            f"| {r.status} | {r.enforcement_level} | `{r.rule_id}` {r.policy_name} | "
            f"`{_cell(_target(r))}` | {_cell(message)} |"
        )
    text = "\n".join(head)
    if len(rows) == 2:
        return text + "No findings.\n"
    total = len(rows) - 2
    note_template = (
        "\n\n> **Truncated:** {shown} of {total} findings shown (the comment is limited to {limit} "
        "characters). See the full report artifact.\n"
    )
    body = ""
    shown = 0
    for row in rows:
        candidate = body + row + "\n"
        reserve = len(note_template.format(shown=total, total=total, limit=limit))
        if len(text) + len(candidate) + reserve > limit:
            note = note_template.format(shown=shown, total=total, limit=limit)
            return text + body + note
        body = candidate
        if not row.startswith("| Status") and not row.startswith("| ---"):
            shown += 1
    return text + body
