"""SLM-GOV-002 (stack, always advisory): every waived violation stays visible.

Registered last in the pack so that it runs after every other stack policy; see
:mod:`policies.lib.waivers` for the design.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib import waivers
from ...lib.rule import SLM, Rule


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    applied = waivers.take_applied()
    if not applied:
        args.not_applicable("no violation was waived")
    env = waivers.environment()
    for item in applied:
        yield item.urn, waivers.waived_message(item, env)


RULE = Rule(
    id="SLM-GOV-002",
    name="waived-results",
    title="Waived violations (reported, never enforced)",
    severity="low",
    rationale=(
        "Nothing may be waived silently: each waived result appears in every report with its reason, owner and expiry."
    ),
    remediation="Fix the violation before the waiver expires, then remove the waiver.",
    controls={SLM: ("Governance: exceptions are explicit, owned and time-limited",)},
    kind="stack",
    default_level="advisory",
    check=check,
    waivable=False,
)
