"""The pack covers the whole Pod Security Standards: every baseline and restricted control has a rule.

The controls are data in ``policies/lib/pss.py`` (names as the standard's page gives them, with its URL
and Kubernetes version); rules cite them in ``controls`` as ``"<profile>: <control>"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.policy.analyzer import load_pack
from infra.policy.catalogue import render_catalogue
from policies.lib import pss
from policies.lib.rule import PSS

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
PACK = load_pack(PACK_DIR)


@dataclass(frozen=True)
class FakeRule:
    id: str
    name: str
    controls: dict[str, tuple[str, ...]] = field(default_factory=dict)


def test_every_control_of_the_standard_has_a_rule() -> None:
    uncovered = [c.ref for c in pss.uncovered(PACK.RULES)]
    assert not uncovered, f"Pod Security Standards controls no rule cites: {uncovered}"


def test_citations_of_a_profile_name_a_control() -> None:
    assert pss.unknown_refs(PACK.RULES) == [], "a rule cites a control the standard does not have (a typo?)"


def test_the_control_list_is_both_profiles() -> None:
    assert pss.FRAMEWORK == PSS
    assert pss.SOURCE_URL.startswith("https://kubernetes.io/")
    assert pss.KUBERNETES_VERSION == "v1.34"
    by_profile = {p: [c.name for c in pss.CONTROLS if c.profile == p] for p in pss.PROFILES}
    assert len(by_profile["baseline"]) == 12 and len(by_profile["restricted"]) == 6
    assert len(pss.CONTROLS_BY_REF) == len(pss.CONTROLS), "a control is listed twice"


def test_the_check_reports_what_is_missing() -> None:
    covering = FakeRule("X-1", "x", {PSS: tuple(c.ref for c in pss.CONTROLS if c.name != "Sysctls")})
    assert [c.ref for c in pss.uncovered([covering])] == ["baseline: Sysctls"]
    typo = FakeRule("X-2", "y", {PSS: ("baseline: Sysctl", "Pod Security Admission labels")})
    assert pss.unknown_refs([typo]) == [("X-2", "baseline: Sysctl")]
    assert list(pss.other_refs([typo])) == ["Pod Security Admission labels"]


def test_the_catalogue_lists_every_control_with_its_rules() -> None:
    text = render_catalogue(PACK_DIR)
    section = text.split("## Pod Security Standards → rule ids", 1)[1].split("\n## ", 1)[0]
    assert pss.SOURCE_URL in section and pss.KUBERNETES_VERSION in section
    rows = [line for line in section.splitlines() if line.startswith(("| baseline |", "| restricted |"))]
    assert len(rows) == len(pss.CONTROLS)
    for control, citing in pss.rules_by_control(PACK.RULES).items():
        shown = f"{control.name} ({control.since}+)" if control.since else control.name
        (row,) = [r for r in rows if r.startswith(f"| {control.profile} | {shown} |")]
        assert all(rule.id in row for rule in citing), row
