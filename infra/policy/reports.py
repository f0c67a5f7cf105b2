"""Render policy reports: text, JSON, SARIF 2.1.0, JUnit XML, Markdown.

Every renderer takes one :class:`~infra.policy.model.PolicyReport` or the reports of several stacks
(one ``slm-deploy check`` run over many stacks): they are merged into one document, each result
naming its stack.

Markdown is pasted into pull requests, so every string that comes from a stack file, a render or a
policy message goes through :func:`escape_markdown` (the one escaping function, also used by
:mod:`infra.gitops.diff` and :mod:`infra.gitops.pr`): no raw HTML, no @-mentions, no links or
images, no breaking out of a table cell or a code span. The text renderer escapes rich markup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from .model import PolicyReport, PolicyResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "slm-deploy-policy"
MARKDOWN_LIMIT = 65_000
STACK_FILE = "stacks/Pulumi.<stack>.yaml"
_ORDER = {"violation": 0, "not-run": 1, "waived": 2, "pass": 3}
_STRICTNESS = {"disabled": 0, "advisory": 1, "remediate": 2, "mandatory": 2}

Reports = PolicyReport | Sequence[PolicyReport]

# --------------------------------------------------------------------------- escaping

#: Invisible, and enough to stop GitHub from linking a mention, an e-mail address or a bare URL.
_ZERO_WIDTH = "&#8203;"
#: C0/C1 controls (other than whitespace) and bidirectional overrides: never shown, never needed.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Markdown punctuation that can start a span (emphasis, code, link, image, math, strikethrough, cell).
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]()!|~$#{}])")
_AUTOLINK = re.compile(r"(?i)(://|\bwww\.)")
_BLOCK_MARKER = re.compile(r"^([-+=])")
_ORDERED_MARKER = re.compile(r"^(\d+)([.)])")


def _plain(value: object) -> str:
    """One line: every run of whitespace (newlines included) is one space; invisible characters go."""
    return " ".join(_INVISIBLE.sub("", str(value)).split())


def _no_links(text: str) -> str:
    text = text.replace("@", "@" + _ZERO_WIDTH)
    return _AUTOLINK.sub(lambda m: m.group(1)[:-1] + _ZERO_WIDTH + m.group(1)[-1], text)


def escape_markdown(value: object, context: Literal["text", "code", "html"] = "text") -> str:
    """``value`` made safe to paste into GitHub (or Azure DevOps) Markdown, on one line.

    * ``text``: inline text, also inside a table cell. HTML is entity-escaped, Markdown punctuation
      backslash-escaped (no emphasis, code, links, images, math, cell breaks), ``@`` and bare URLs
      get a zero-width space so nothing is mentioned or linked.
    * ``code``: an inline code span (backticks included), safe inside a table cell: the fence is
      longer than any backtick run in the value and ``|`` is escaped. Empty values give ``""``.
    * ``html``: text inside an HTML block (``<summary>``), where Markdown is not parsed.
    """
    text = _plain(value)
    if context == "code":
        if not text:
            return ""
        # GitHub splits table cells on `|` even inside code spans; `\|` keeps it (a backslash right
        # before it would pair with the escape, so a zero-width space goes in between).
        text = re.sub(r"\\(?=\|)", "\\\\\u200b", text).replace("|", "\\|")
        longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
        fence = "`" * (longest + 1)
        pad = " " if text.startswith("`") or text.endswith("`") else ""
        return f"{fence}{pad}{text}{pad}{fence}"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if context == "html":
        return _no_links(text.replace('"', "&quot;"))
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    # Nothing that would start a list or a setext heading where the text begins a line (a quote).
    text = _ORDERED_MARKER.sub(r"\1\\\2", _BLOCK_MARKER.sub(r"\\\1", text))
    return _no_links(text)


def _rich(value: object) -> str:
    from rich.markup import escape

    return escape(str(value))


# --------------------------------------------------------------------------- shared


def _reports(reports: Reports) -> list[PolicyReport]:
    """A list of reports whose results name their stack."""
    found = [reports] if isinstance(reports, PolicyReport) else list(reports)
    if not found:
        raise ValueError("no policy report to render")
    return [report.named() for report in found]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _findings(report: PolicyReport) -> list[PolicyResult]:
    """Everything but passes, most important first."""
    return sorted(
        (r for r in report.results if r.status != "pass"),
        key=lambda r: (_ORDER[r.status], not r.blocking, r.rule_id, r.resource_name or ""),
    )


def _all_findings(reports: Sequence[PolicyReport]) -> list[PolicyResult]:
    """Findings of every stack, most important first across stacks (stable by stack order)."""
    order = {id(r): i for i, r in enumerate(reports)}
    found = [(order[id(report)], r) for report in reports for r in _findings(report)]
    found.sort(key=lambda item: (_ORDER[item[1].status], not item[1].blocking, item[0]))
    return [r for _, r in found]


def _target(result: PolicyResult) -> str:
    return result.resource_name or "(stack)"


def _counts(results: Iterable[PolicyResult]) -> dict[str, int]:
    counts = {"mandatory": 0, "advisory": 0, "waived": 0, "not-run": 0, "pass": 0}
    for r in results:
        if r.status == "violation":
            counts["mandatory" if r.blocking else "advisory"] += 1
        else:
            counts[r.status] += 1
    return counts


def _summary(results: Iterable[PolicyResult]) -> str:
    c = _counts(results)
    return (
        f"{c['mandatory']} mandatory violation(s), {c['advisory']} advisory, {c['waived']} waived, "
        f"{c['not-run']} not run during preview, {c['pass']} passed"
    )


def _waived_note(result: PolicyResult) -> str:
    if result.status != "waived" or result.waiver is None:
        return ""
    w = result.waiver
    covers = f" (covers {w.covers})" if w.covers else ""
    return f"waived until {w.expires} by {w.owner}{covers}: {w.reason}"


def _level_line(report: PolicyReport) -> str:
    """``stack prod: level prod (bound by name in prod.json), declares environment prod``."""
    text = f"stack {report.stack or '?'}: level {report.level or '?'}"
    if report.binding:
        text += f" ({report.binding})"
    if report.environment:
        text += f", declares environment {report.environment}"
    return text


# --------------------------------------------------------------------------- text


def not_evaluated_line(report: PolicyReport) -> str:
    """One line naming the policies that judged nothing, grouped by why (empty when there are none)."""
    by_reason: dict[str, list[str]] = {}
    for policy, reason in report.not_evaluated:
        by_reason.setdefault(reason, []).append(policy.rule_id)
    return "; ".join(f"not evaluated ({reason}): {', '.join(sorted(ids))}" for reason, ids in by_reason.items())


def render_text(reports: Reports, width: int = 140) -> str:
    """A rich table for terminals (returned as text); a Stack column when there are several stacks."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    items = _reports(reports)
    many = len(items) > 1
    first = items[0]
    source = "" if many else f" ({_rich(first.config_source)})"
    table = Table(title=f"Policy pack {_rich(first.pack_name)} v{_rich(first.pack_version)}{source}")
    for column in (["Stack"] if many else []) + ["Status", "Level", "Rule", "Resource", "Message"]:
        table.add_column(column, overflow="fold")
    styles = {"violation": "red", "waived": "yellow", "not-run": "cyan", "pass": "green"}
    for r in _all_findings(items):
        message = r.message
        if note := _waived_note(r):
            message = f"{message}\n{note}"
        cells = [
            f"[{styles[r.status]}]{r.status}[/]",
            r.enforcement_level,
            _rich(f"{r.rule_id} {r.policy_name}"),
            _rich(_target(r)),
            _rich(message),
        ]
        table.add_row(*([_rich(r.stack or "")] if many else []), *cells)
    buffer = StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    if table.row_count:
        console.print(table)
    for report in items:
        if report.level or report.binding:
            console.print(_rich(_level_line(report)))
        console.print(_rich(f"{report.stack}: {_summary(report.results)}" if many else _summary(report.results)))
        if line := not_evaluated_line(report):
            console.print(_rich(f"{report.stack}: {line}" if many else line))
    if many:
        console.print(_rich(f"total ({len(items)} stacks): {_summary(r for x in items for r in x.results)}"))
    return buffer.getvalue()


# --------------------------------------------------------------------------- JSON


def render_json(reports: Reports) -> str:
    """One stack: the report's own document. Several: ``{"pack", "stacks": [...each stack's run,
    without results...], "summary": totals, "results": [...every result, with its stack...]}``."""
    items = _reports(reports)
    if len(items) == 1:
        return json.dumps(items[0].to_dict(), indent=2, sort_keys=False)
    runs = [report.to_dict() for report in items]
    results = [result for run in runs for result in run.pop("results")]
    pack = runs[0].pop("pack")
    for run in runs[1:]:
        run.pop("pack")
    totals = {
        key: sum(run["summary"][key] for run in runs)
        for key in ("mandatoryViolations", "advisoryViolations", "waived", "notRun", "passed")
    }
    document = {
        "pack": pack,
        "stacks": runs,
        "summary": {**totals, "ok": all(r.ok for r in items)},
        "results": results,
    }
    return json.dumps(document, indent=2, sort_keys=False)


# --------------------------------------------------------------------------- SARIF


def _sarif_level(result: PolicyResult) -> str:
    if result.status == "violation":
        return "error" if result.blocking else "warning"
    if result.status == "pass":
        return "none"
    return "note"


def render_sarif(reports: Reports, stack_file: str = STACK_FILE) -> str:
    """SARIF 2.1.0, one run: one rule per policy, one result per finding of every stack, located at
    ``stack_file`` (relative to the repository root; ``<stack>`` is replaced by the result's stack)
    with the resource URN as a logical location. Waived results carry an accepted external
    suppression with the waiver's reason. A rule's default level is the strictest any stack ran it at."""
    items = _reports(reports)
    first = items[0]
    rules = []
    index = {}
    for i, p in enumerate(first.policies):
        index[p.name] = i
        levels = {r.stack or "": info.enforcement_level for r in items if (info := r.policy(p.name)) is not None}
        strictest = max(levels.values(), key=lambda level: _STRICTNESS.get(level, 0), default=p.enforcement_level)
        rules.append(
            {
                "id": p.rule_id,
                "name": p.name,
                "shortDescription": {"text": p.title},
                "fullDescription": {"text": p.rationale or p.title},
                "help": {"text": p.remediation or p.title},
                "defaultConfiguration": {
                    "level": "error" if strictest in ("mandatory", "remediate") else "warning",
                    "enabled": any(level != "disabled" for level in levels.values()),
                },
                "properties": {
                    "severity": p.severity,
                    "enforcementLevel": strictest,
                    "enforcementLevels": levels,
                    "controls": p.controls,
                    "checkov": list(p.checkov),
                    "tags": ["security", p.severity, *p.checkov],
                },
            }
        )
    results = []
    for report in items:
        uri = stack_file.replace("<stack>", report.stack) if report.stack else stack_file
        for r in _findings(report):
            entry: dict[str, Any] = {
                "ruleId": r.rule_id or r.policy_name,
                "level": _sarif_level(r),
                "message": {"text": f"{_target(r)}: {r.message}" if r.message else _target(r)},
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": uri}},
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
                    "stack": report.stack,
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
                        "justification": f"{r.waiver.reason} (owner {r.waiver.owner}, expires {r.waiver.expires}"
                        + (f", covers {r.waiver.covers})" if r.waiver.covers else ")"),
                    }
                ]
            results.append(entry)
    stacks = [
        {"stack": r.stack, "environment": r.environment, "level": r.level, "configSource": r.config_source}
        for r in items
    ]
    properties: dict[str, Any] = {"stacks": stacks}
    if len(items) == 1:
        properties.update(configSource=first.config_source, environment=first.environment, level=first.level)
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": {"name": TOOL_NAME, "version": first.pack_version, "rules": rules}},
                "results": results,
                "properties": properties,
            }
        ],
    }
    return json.dumps(sarif, indent=2)


# --------------------------------------------------------------------------- JUnit


def render_junit(reports: Reports, advisory_as_failure: bool = False) -> str:
    """JUnit XML: one testsuite per stack, one testcase per (rule, resource) checked; a mandatory
    violation is a failure (an advisory one too with ``advisory_as_failure``), waived and not-run
    results are skipped. Test case names carry the stack when there are several."""
    import xml.etree.ElementTree as ET

    items = _reports(reports)
    many = len(items) > 1
    root = ET.Element("testsuites", name="slm-deploy policy")
    total_tests = total_failures = 0
    for report in items:
        cases: dict[tuple[str, str | None], list[PolicyResult]] = {}
        for r in sorted(report.results, key=lambda r: (r.rule_id, r.resource_name or "")):
            cases.setdefault((r.policy_name, r.resource_urn), []).append(r)
        label = f"{report.stack}: " if report.stack else ""
        suite = ET.SubElement(root, "testsuite", name=f"{label}{report.pack_name} ({report.config_source})")
        properties = ET.SubElement(suite, "properties")
        for key, value in (("stack", report.stack), ("environment", report.environment), ("level", report.level)):
            if value:
                ET.SubElement(properties, "property", name=key, value=value)
        failures = skipped = 0
        for results in cases.values():
            first = results[0]
            name = f"{report.stack}: {_target(first)}" if many and report.stack else _target(first)
            case = ET.SubElement(suite, "testcase", classname=f"{first.rule_id} {first.policy_name}", name=name)
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
                reason = _waived_note(r) or _one_line(r.message)
                ET.SubElement(case, "skipped", message=reason[:500])
            if violations and not failing:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(f"advisory: {r.message}" for r in violations)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
        suite.set("skipped", str(skipped))
        suite.set("errors", "0")
        total_tests += len(cases)
        total_failures += failures
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


# --------------------------------------------------------------------------- Markdown


def _text(value: object) -> str:
    return escape_markdown(value)


def _code(value: object) -> str:
    return escape_markdown(value, "code")


def _counts_row(report: PolicyReport) -> str:
    c = _counts(report.results)
    result = ":white_check_mark: passed" if report.ok else ":x: failed"
    return (
        f"| {_code(report.stack or '')} | {_code(report.level or '')} | {_code(report.environment or '')} | "
        f"{c['mandatory']} | {c['advisory']} | {c['waived']} | {c['not-run']} | {c['pass']} | {result} |"
    )


def render_markdown(reports: Reports, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: summary, then violations, not-run and waived results; at most ``limit`` characters.

    Several stacks: a summary row per stack, then one table of findings with a Stack column."""
    items = _reports(reports)
    many = len(items) > 1
    ok = all(r.ok for r in items)
    first = items[0]
    status = "passed" if ok else "failed"
    icon = ":white_check_mark:" if ok else ":x:"
    if many:
        head = [
            f"### {icon} Policy pack {_code(first.pack_name)} {status} for {len(items)} stacks",
            "",
            f"{_summary(r for x in items for r in x.results)}.",
            "",
            "| Stack | Level | Declared environment | Mandatory | Advisory | Waived | Not run | Passed | Result |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *(_counts_row(report) for report in items),
            "",
        ]
    else:
        level = ""
        if first.level:
            level = f"Level {_code(first.level)}" + (f" ({_text(first.binding)})" if first.binding else "") + ". "
        head = [
            f"### {icon} Policy pack {_code(first.pack_name)} {status}"
            + (f" for stack {_code(first.stack)}" if first.stack else ""),
            "",
            level
            + f"Config {_code(first.config_source)}"
            + (f", environment {_code(first.environment)}" if first.environment else "")
            + f": {_summary(first.results)}.",
            "",
        ]
    unevaluated = [(report, line) for report in items if (line := not_evaluated_line(report))]
    if unevaluated:
        head += [
            "<details><summary>Policies that judged nothing in this run</summary>",
            "",
            *(
                f"- {_code(report.stack or '')}: {_text(line)}" if many else f"- {_text(line)}"
                for report, line in unevaluated
            ),
            "",
            "</details>",
            "",
        ]
    columns = (["Stack"] if many else []) + ["Status", "Level", "Rule", "Resource", "Message"]
    rows = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    for r in _all_findings(items):
        message = r.message
        if note := _waived_note(r):
            message = f"{message} — {note}"
        cells = [
            r.status,
            r.enforcement_level,
            f"{_code(r.rule_id)} {_text(r.policy_name)}",
            _code(_target(r)),
            _text(message),
        ]
        rows.append("| " + " | ".join(([_code(r.stack or "")] if many else []) + cells) + " |")
    text = "\n".join(head) + "\n"  # a blank line before the table
    if len(rows) == 2:
        return text + "No findings.\n"
    total = len(rows) - 2
    note_template = (
        "\n\n> **Truncated:** {shown} of {total} findings shown (the comment is limited to {limit} "
        "characters). See the full report artifact.\n"
    )
    reserve = len(note_template.format(shown=total, total=total, limit=limit))
    body = ""
    shown = 0
    for number, row in enumerate(rows):
        candidate = body + row + "\n"
        if len(text) + len(candidate) + reserve > limit:
            note = note_template.format(shown=shown, total=total, limit=limit)
            return text + body + note
        body = candidate
        if number >= 2:
            shown += 1
    return text + body


def truncate_markdown(text: str, limit: int, note: str) -> str:
    """``text`` cut to at most ``limit`` characters (``note`` appended) at a line boundary, closing any
    ``<details>`` block left open, so that nothing after it ends up inside the block."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(note), 0)]
    while cut:
        cut = cut[: cut.rfind("\n") + 1]  # whole lines only
        closing = "\n</details>\n" * max(cut.count("<details>") - cut.count("</details>"), 0)
        if len(cut) + len(closing) + len(note) <= limit:
            return cut + closing + note
        cut = cut[:-1]
    return note[:limit]
