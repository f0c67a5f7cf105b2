"""Every fixture beside every rule, run through the analyzer protocol with its rule mandatory."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.policy.analyzer import load_pack, run_policy_pack
from infra.policy.fixtures import discover_fixtures, load_fixture

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"

FIXTURES = discover_fixtures(PACK_DIR)
PACK = load_pack(PACK_DIR)
FOLDER_TO_RULE = {folder: name for name, folder in PACK.RULE_FOLDERS.items()}


def _config_for(rule: str, properties: dict[str, object]) -> dict[str, object]:
    if rule == "waived-results":
        # waived results are reported only for violations of enabled rules; the policy stays advisory
        return {"all": "mandatory", "waived-results": "advisory"}
    return {"all": "disabled", "waived-results": "advisory", rule: {"enforcementLevel": "mandatory", **properties}}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_fixture(path: Path) -> None:
    fixture = load_fixture(path)
    rule = FOLDER_TO_RULE[fixture.rule_folder]
    report = run_policy_pack(fixture.resources, _config_for(rule, fixture.config), fixture.stack_config)
    if rule == "waived-results":
        found = report.waived
    else:
        found = [r for r in report.results if r.policy_name == rule and r.status == "violation"]
        assert all(r.enforcement_level == "mandatory" for r in found)
    assert not report.not_run, [r.message for r in report.not_run]
    if fixture.expected == "fail":
        assert found, f"{fixture.id}: expected a violation of {rule}, got none"
    else:
        assert not found, f"{fixture.id}: expected no violation of {rule}, got {[r.message for r in found]}"


def test_every_rule_has_pass_and_fail_fixtures() -> None:
    kinds: dict[str, set[str]] = {folder: set() for folder in PACK.RULE_FOLDERS.values()}
    for path in FIXTURES:
        kinds.setdefault(path.parent.parent.name, set()).add(path.name.split("-", 1)[0])
    missing = {folder: sorted({"pass", "fail"} - found) for folder, found in kinds.items() if found != {"pass", "fail"}}
    assert not missing
    assert set(kinds) == set(PACK.RULE_FOLDERS.values()), "fixture folder without a rule"
