"""The pack's contents: every rule, its policy and its catalogue entry. Side-effect free."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Policy

from .lib import waivers
from .lib.rule import Rule
from .rules import RULE_MODULES, load_rules
from .rules.waived_results import RULE as WAIVED_RESULTS
from .rules.waiver_validity import make_rule as make_waiver_validity

PACK_NAME = "slm-deploy"
#: Kept equal to ``version`` in PulumiPolicy.yaml (a test checks it).
PACK_VERSION = "0.1.0"
PACK_DESCRIPTION = (
    "slm-deploy guard rails for small language models on Kubernetes and AKS "
    "(Pod Security Standards restricted, NSA/CISA hardening, AKS baseline, availability, waivers)."
)

_CHECK_RULES = load_rules()
#: Every rule, in catalogue order; ``waived-results`` is last so that it runs after all others.
RULES: list[Rule] = [
    *_CHECK_RULES,
    make_waiver_validity([r for r in _CHECK_RULES if r.waivable]),
    WAIVED_RESULTS,
]
RULES_BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}
RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
#: Rule folder (under policies/rules) of each rule name.
RULE_FOLDERS: dict[str, str] = {
    **{rule.name: folder for rule, folder in zip(_CHECK_RULES, RULE_MODULES, strict=True)},
    "waiver-validity": "waiver_validity",
    "waived-results": "waived_results",
}
POLICIES: list[Policy] = [r.policy() for r in RULES]
#: The checkov checks each rule corresponds to, by the rule's (name, id): a waiver of the rule skips them.
CHECKOV_IDS: dict[tuple[str, str], tuple[str, ...]] = {(r.name, r.id): tuple(r.checkov) for r in RULES if r.checkov}
#: Policies whose level must stay advisory (see policies.lib.waivers).
ALWAYS_ADVISORY = frozenset({WAIVED_RESULTS.name})


def catalogue() -> list[dict[str, Any]]:
    """Rule metadata as plain data (for docs, reports and checkov skip annotations)."""
    return [
        {
            "id": r.id,
            "name": r.name,
            "title": r.title,
            "severity": r.severity,
            "kind": r.kind,
            "rationale": r.rationale,
            "remediation": r.remediation,
            "controls": {k: list(v) for k, v in r.controls.items()},
            "checkov": list(r.checkov),
            "defaultLevel": r.default_level,
            "config": {k: dict(v) for k, v in r.config.items()},
            "resourceTypes": sorted(r.resource_types),
            "waivable": r.waivable,
            "subject": r.subject,
            "folder": RULE_FOLDERS[r.name],
        }
        for r in RULES
    ]


def reset_state() -> None:
    """Forget per-process analyzer state (waived results); the offline driver calls it per run."""
    waivers.reset()
