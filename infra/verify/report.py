"""The verification report: one check per line, as text (rich), JSON and JUnit XML."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

#: ``not-applicable``: the check cannot run on this cluster at all (a pod on a fake node has no container
#: to exec into or to answer a request). Like ``skipped``, it fails nothing.
CheckStatus = Literal["passed", "failed", "skipped", "not-applicable"]


@dataclass(frozen=True)
class Check:
    """One verified promise: ``subject`` is the model, or ``model/pod`` for in-pod checks."""

    subject: str
    name: str
    status: CheckStatus
    message: str = ""


@dataclass
class VerifyReport:
    stack: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in ("passed", "failed", "skipped")}
        text = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        not_applicable = sum(1 for c in self.checks if c.status == "not-applicable")
        return f"{text}, {not_applicable} not applicable" if not_applicable else text


def render_text(report: VerifyReport, width: int = 140) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"slm-deploy verify: stack {report.stack}")
    for column in ("Status", "Subject", "Check", "Message"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        table.add_row(check.status, check.subject, check.name, check.message)
    buffer = StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    if report.checks:
        console.print(table)
    console.print(report.summary())
    return buffer.getvalue()


def render_json(report: VerifyReport) -> str:
    from infra.json_keys import camel_keys

    data = {
        "stack": report.stack,
        "ok": report.ok,
        "summary": report.summary(),
        "checks": [asdict(c) for c in report.checks],
    }
    return json.dumps(camel_keys(data), indent=2) + "\n"


def render_junit(report: VerifyReport) -> str:
    """One testsuite per subject, one testcase per check."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name=f"slm-deploy verify {report.stack}")
    suites: dict[str, ET.Element] = {}
    for check in report.checks:
        suite = suites.get(check.subject)
        if suite is None:
            suite = suites[check.subject] = ET.SubElement(root, "testsuite", name=check.subject)
        case = ET.SubElement(suite, "testcase", classname=check.subject, name=check.name)
        if check.status == "failed":
            node = ET.SubElement(case, "failure", message=check.message[:500] or "failed")
            node.text = check.message
        elif check.status in ("skipped", "not-applicable"):  # JUnit has no "not applicable": the message says it
            ET.SubElement(case, "skipped", message=check.message[:500])
    for subject, suite in suites.items():
        checks = [c for c in report.checks if c.subject == subject]
        suite.set("tests", str(len(checks)))
        suite.set("failures", str(sum(c.status == "failed" for c in checks)))
        suite.set("skipped", str(sum(c.status in ("skipped", "not-applicable") for c in checks)))
        suite.set("errors", "0")
    root.set("tests", str(len(report.checks)))
    root.set("failures", str(len(report.failed)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
