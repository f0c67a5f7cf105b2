"""SLM-GOV-001 (stack): every waiver in stack config is well-formed and names a waivable policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib import waivers
from ...lib.rule import SLM, Rule


def make_check(
    waivable: Mapping[str, str],
) -> Callable[[StackValidationArgs, Mapping[str, Any]], Iterator[tuple[str | None, str]]]:
    """``waivable`` maps each waivable policy name to its id."""
    names = set(waivable)
    ids = {i.upper() for i in waivable.values()}

    def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
        entries, problems = waivers.load()
        _, today_problem = waivers.today()
        if not entries and not problems and not today_problem:
            args.not_applicable("the stack config has no waivers")
        for problem in problems:
            yield None, problem
        if today_problem:
            yield None, today_problem
        for w in entries:
            if w.policy not in names and w.policy.upper() not in ids:
                yield (
                    None,
                    f"waiver #{w.index + 1} names policy '{w.policy}', which is not a waivable policy of this "
                    f"pack; it is not applied (resource {w.resource}, owner {w.owner})",
                )

    return check


def make_rule(waivable: Mapping[str, str]) -> Rule:
    return Rule(
        id="SLM-GOV-001",
        name="waiver-validity",
        title="Waivers must be well-formed and name a policy of this pack",
        severity="high",
        rationale=(
            "A waiver that cannot be applied hides nothing but misleads reviewers; a typo must not pass unnoticed."
        ),
        remediation=(
            "Fix the waiver in slm-deploy:waivers: policy (name or id), resource, reason, owner, expires (YYYY-MM-DD)."
        ),
        controls={SLM: ("Governance: exceptions are explicit, owned and time-limited",)},
        kind="stack",
        check=make_check(waivable),
        waivable=False,
    )
