"""Every fixture beside every rule, run through the analyzer protocol with its rule mandatory.

A fail fixture states the violations it must produce (``expect``, see :mod:`infra.policy.fixtures`):
each must be reported, with its message fragment, on its resource, and the rule must report nothing
else. A rule that raises while evaluating (its violation reads "the rule could not evaluate this
resource") is a test failure, never a passing fail fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.policy.analyzer import load_pack, run_policy_pack
from infra.policy.fixtures import Expectation, FixtureError, discover_fixtures, load_fixture
from infra.policy.model import PolicyResult

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"

FIXTURES = discover_fixtures(PACK_DIR)
PACK = load_pack(PACK_DIR)
FOLDER_TO_RULE = {folder: name for name, folder in PACK.RULE_FOLDERS.items()}
#: What :func:`policies.lib.rule._run` reports for a rule that raised.
COULD_NOT_EVALUATE = "could not evaluate"


def _id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.name}"


def _config_for(rule: str, properties: dict[str, object]) -> dict[str, object]:
    if rule == "waived-results":
        # waived results are reported only for violations of enabled rules; the policy stays advisory
        return {"all": "mandatory", "waived-results": "advisory"}
    return {"all": "disabled", "waived-results": "advisory", rule: {"enforcementLevel": "mandatory", **properties}}


def _describe(results: list[PolicyResult]) -> list[str]:
    return [f"{r.policy_name} on {r.resource_name or 'the stack'}: {r.message}" for r in results]


def _matches(expectation: Expectation, result: PolicyResult, rule: str) -> bool:
    return expectation.matches(result.policy_name, result.resource_name, result.message, rule)


@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_fixture(path: Path) -> None:
    fixture = load_fixture(path)
    rule = FOLDER_TO_RULE[fixture.rule_folder]
    report = run_policy_pack(fixture.resources, _config_for(rule, fixture.config), fixture.stack_config)

    crashed = [r for r in report.results if COULD_NOT_EVALUATE in r.message]
    assert not crashed, f"{fixture.id}: a rule raised while evaluating: {_describe(crashed)}"
    assert not report.not_run, [r.message for r in report.not_run]
    if rule == "waived-results":
        found = report.waived
    else:
        found = [r for r in report.results if r.policy_name == rule and r.status == "violation"]
        assert all(r.enforcement_level == "mandatory" for r in found)

    if fixture.expected == "pass":
        assert not found, f"{fixture.id}: expected no violation of {rule}, got {_describe(found)}"
        return
    assert found, f"{fixture.id}: expected a violation of {rule}, got none"
    missing = [
        f"{e.policy or rule} on {e.resource or 'the stack'}: ...{e.message}..."
        for e in fixture.expect
        if not any(_matches(e, r, rule) for r in found)
    ]
    assert not missing, f"{fixture.id}: expected violations not reported: {missing}; reported: {_describe(found)}"
    unexpected = [r for r in found if not any(_matches(e, r, rule) for e in fixture.expect)]
    assert not unexpected, f"{fixture.id}: violations the fixture does not expect: {_describe(unexpected)}"


def test_every_rule_has_pass_and_fail_fixtures() -> None:
    kinds: dict[str, set[str]] = {folder: set() for folder in PACK.RULE_FOLDERS.values()}
    for path in FIXTURES:
        kinds.setdefault(path.parent.parent.name, set()).add(path.name.split("-", 1)[0])
    missing = {folder: sorted({"pass", "fail"} - found) for folder, found in kinds.items() if found != {"pass", "fail"}}
    assert not missing
    assert set(kinds) == set(PACK.RULE_FOLDERS.values()), "fixture folder without a rule"


def test_fail_fixture_without_expect_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "some_rule" / "fixtures"
    folder.mkdir(parents=True)
    bare = folder / "fail-bare.yaml"
    bare.write_text("- {type: kubernetes:core/v1:Pod, name: pod, props: {}}\n", encoding="utf-8")
    with pytest.raises(FixtureError, match="states the violations"):
        load_fixture(bare)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("expect: []\nresources: []\n", "non-empty list"),
        ("expect: [{resource: pod}]\nresources: [{type: t, name: pod}]\n", "message fragment"),
        ("expect: [{resource: other, message: x}]\nresources: [{type: t, name: pod}]\n", "does not define"),
        ("expect: [{resource: pod, mesage: x}]\nresources: [{type: t, name: pod}]\n", "keys"),
        ("expects: [{resource: pod, message: x}]\nresources: [{type: t, name: pod}]\n", "unknown fixture keys"),
    ],
)
def test_malformed_expectations_are_refused(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "some_rule" / "fixtures" / "fail-x.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FixtureError, match=error):
        load_fixture(path)


def test_pass_fixture_may_not_expect(tmp_path: Path) -> None:
    path = tmp_path / "some_rule" / "fixtures" / "pass-x.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("expect: [{resource: pod, message: x}]\nresources: [{type: t, name: pod}]\n", encoding="utf-8")
    with pytest.raises(FixtureError, match="pass fixture"):
        load_fixture(path)


def test_a_rule_that_raises_fails_its_fail_fixture() -> None:
    """The crash marker the fixture test refuses is exactly what a raising rule reports."""
    from policies.lib.rule import _run

    def broken() -> list[str]:
        raise KeyError("spec")

    (message,) = _run(broken)
    assert COULD_NOT_EVALUATE in message
