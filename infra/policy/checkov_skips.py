"""checkov skip annotations generated from the stack's waivers (one source of truth for exceptions).

checkov reads ``checkov.io/skip<N>: <CHECK_ID>=<reason>`` annotations on the scanned object. A waiver
of one of our rules for a Kubernetes resource skips the checkov checks that rule maps to; an expired
waiver skips nothing, so checkov fails exactly where the policy pack does.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping

from infra.config.stack import Waiver


def skip_annotations(
    waivers: Iterable[Waiver], checkov_ids: Mapping[str, tuple[str, ...]], today: datetime.date
) -> dict[str, dict[str, str]]:
    """Annotations to add, by the waived resource's logical name (or URN).

    ``checkov_ids`` maps a rule's name and its id to the checkov checks it corresponds to.
    """
    by_resource: dict[str, list[tuple[str, str]]] = {}
    for waiver in waivers:
        if waiver.expires <= today:
            continue
        for check in checkov_ids.get(waiver.policy, checkov_ids.get(waiver.policy.upper(), ())):
            reason = " ".join(f"{waiver.reason} (owner {waiver.owner}, until {waiver.expires})".split())
            by_resource.setdefault(waiver.resource, []).append((check, reason))
    return {
        resource: {f"checkov.io/skip{index}": f"{check}={reason}" for index, (check, reason) in enumerate(skips, 1)}
        for resource, skips in by_resource.items()
    }


def checkov_ids_of_pack() -> dict[str, tuple[str, ...]]:
    """Each rule's checkov ids, under its name and under its id."""
    from infra.policy.analyzer import load_pack

    ids: dict[str, tuple[str, ...]] = {}
    for rule in load_pack().RULES:
        ids[rule.name] = tuple(rule.checkov)
        ids[rule.id.upper()] = tuple(rule.checkov)
    return ids
