"""SLM-GOV-001 (stack): every waiver in stack config is well-formed, names a waivable policy and a resource
of this stack, and ends within the environment's maximum lifetime.

A waiver expiring years away (``9999-12-31``) is a permanent exception in disguise: the pack config sets
``maxLifetimeDays`` per environment (counted from today). A waiver naming a resource the stack no longer
declares is stale: it would silently cover a future resource of the same name.

Waivers cover exactly what they name (:mod:`policies.lib.waivers`): a waiver of a rule whose findings carry a
subject must list the subjects it covers, a ``monthly-budget`` waiver must state ``maxMonthlyUsd``, and a
waiver whose subjects cover no finding of this run is stale too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib import waivers
from ...lib.rule import SLM, Rule

#: Without a configured maximum, a waiver may run for a year.
DEFAULT_MAX_LIFETIME_DAYS = 365


def make_check(
    rules: Sequence[Rule],
) -> Callable[[StackValidationArgs, Mapping[str, Any]], Iterator[tuple[str | None, str]]]:
    """``rules``: the waivable rules of the pack."""

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
        used = {(applied.waiver.index, message) for applied in waivers.peek_applied() for message in applied.messages}
        used_waivers = {index for index, _ in used}
        for w in entries:
            named = [rule for rule in rules if w.names_policy(rule.name, rule.id)]
            for rule in named:
                yield from _subject_problems(w, rule, used_waivers)
            if not named:
                yield (
                    None,
                    f"waiver #{w.index + 1} names policy '{w.policy}', which is not a waivable policy of this "
                    f"pack{_did_you_mean(w.policy, [n for r in rules for n in (r.name, r.id)])}; it is not applied "
                    f"(resource {w.resource}, owner {w.owner})",
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
                    f"declare{_did_you_mean(w.resource, [r.name for r in args.resources])}: it is stale (owner "
                    f"{w.owner}); remove it",
                )

    return check


def _did_you_mean(given: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a mistyped policy or resource name, or nothing when none is close."""
    import difflib

    close = difflib.get_close_matches(given, sorted(set(known)), n=2, cutoff=0.75)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _subject_problems(w: waivers.Waiver, rule: Rule, used: set[int]) -> Iterator[tuple[str | None, str]]:
    where = f"waiver #{w.index + 1} ({w.policy} on {w.resource}, owner {w.owner})"
    if rule.subject == "amount":
        if w.max_monthly_usd is None:
            yield (
                None,
                f"{where} states no maxMonthlyUsd: a budget waiver covers an estimate up to the figure it states, "
                "so it covers nothing; add maxMonthlyUsd",
            )
        return
    if rule.subject and not w.subjects:
        yield (
            None,
            f"{where} names no subjects: findings of {rule.name} are about one {rule.subject} each, and a waiver "
            f"covers only the ones it lists; add subjects: [<{rule.subject}>] as the report prints them",
        )
    elif w.subjects and w.index not in used:
        yield (
            None,
            f"{where} lists subjects {', '.join(w.subjects)} but covers no finding of this run: it is stale; "
            "remove it or correct the subjects (the report prints each finding's subject)",
        )


def make_rule(rules: Sequence[Rule]) -> Rule:
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
        check=make_check(rules),
        waivable=False,
    )
