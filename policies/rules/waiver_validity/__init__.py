"""SLM-GOV-001 (stack): every waiver in stack config is well-formed, names a waivable policy and a resource
of this stack, and ends within the environment's maximum lifetime.

A waiver expiring years away (``9999-12-31``) is a permanent exception in disguise: the pack config sets
``maxLifetimeDays`` per environment (counted from today). A waiver naming a resource the stack no longer
declares is stale: it would silently cover a future resource of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib import waivers
from ...lib.rule import SLM, Rule

#: Without a configured maximum, a waiver may run for a year.
DEFAULT_MAX_LIFETIME_DAYS = 365


def make_check(
    waivable: Mapping[str, str],
) -> Callable[[StackValidationArgs, Mapping[str, Any]], Iterator[tuple[str | None, str]]]:
    """``waivable`` maps each waivable policy name to its id."""

    def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
        entries, problems = waivers.load()
        _, today_problem = waivers.today()
        if not entries and not problems and not today_problem:
            args.not_applicable("the stack config has no waivers")
        for problem in problems:
            yield None, problem
        if today_problem:
            yield None, today_problem
        today, _ = waivers.today()
        longest = int(config.get("maxLifetimeDays", DEFAULT_MAX_LIFETIME_DAYS))
        declared = {r.name for r in args.resources} | {r.urn for r in args.resources}
        for w in entries:
            if not any(w.names_policy(name, policy_id) for name, policy_id in waivable.items()):
                yield (
                    None,
                    f"waiver #{w.index + 1} names policy '{w.policy}', which is not a waivable policy of this "
                    f"pack; it is not applied (resource {w.resource}, owner {w.owner})",
                )
            if (w.expires - today).days > longest:
                yield (
                    None,
                    f"waiver #{w.index + 1} ({w.policy} on {w.resource}) expires on {w.expires.isoformat()}, "
                    f"{(w.expires - today).days} days from today; at most {longest} are allowed here: renew it "
                    "when it runs out instead",
                )
            if w.resource not in declared:
                yield (
                    None,
                    f"waiver #{w.index + 1} ({w.policy}) names resource '{w.resource}', which this stack does not "
                    f"declare: it is stale (owner {w.owner}); remove it",
                )

    return check


def make_rule(waivable: Mapping[str, str]) -> Rule:
    return Rule(
        id="SLM-GOV-001",
        name="waiver-validity",
        title="Waivers must be well-formed, name a policy of this pack and a resource of this stack, and end soon",
        severity="high",
        rationale=(
            "A waiver that cannot be applied hides nothing but misleads reviewers; a typo must not pass unnoticed."
        ),
        remediation=(
            "Fix the waiver in slm-deploy:waivers: policy (name or id), resource, reason, owner, expires (YYYY-MM-DD, "
            "within the environment's maxLifetimeDays); remove waivers of resources that are gone."
        ),
        controls={SLM: ("Governance: exceptions are explicit, owned and time-limited",)},
        kind="stack",
        config={
            "maxLifetimeDays": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_LIFETIME_DAYS,
                "description": "How far from today a waiver may expire (prod keeps exceptions short).",
            }
        },
        check=make_check(waivable),
        waivable=False,
    )
