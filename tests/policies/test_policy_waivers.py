"""Waivers from stack config, through the analyzer protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.plan.model import UNKNOWN
from infra.policy.analyzer import run_policy_pack
from infra.policy.fixtures import resources_from

CONFIG = {
    "all": "disabled",
    "waived-results": "advisory",
    "waiver-validity": "mandatory",
    "read-only-root-filesystem": "mandatory",
}
DEPLOYMENT: list[dict[str, Any]] = [
    {
        "type": "kubernetes:apps/v1:Deployment",
        "name": "dev-qwen3-deployment",
        "props": {
            "metadata": {"namespace": "models"},
            "spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.9.2"}]}}},
        },
    }
]


def waiver(**overrides: str) -> dict[str, str]:
    entry = {
        "policy": "read-only-root-filesystem",
        "resource": "dev-qwen3-deployment",
        "reason": "vLLM compiles kernels into its package directory",
        "owner": "platform-team",
        "expires": "2026-03-01",
    }
    entry.update(overrides)
    return entry


def run(waivers: Any, today: str = "2026-01-15", config: dict[str, Any] | None = None) -> Any:
    stack_config = {"environment": "prod", "waivers": waivers, "today": today}
    return run_policy_pack(resources_from(DEPLOYMENT), config or CONFIG, stack_config)


def test_active_waiver_is_visible_and_not_blocking() -> None:
    report = run([waiver()])
    assert report.mandatory_violations == 0
    assert not report.violations
    (waived,) = report.waived
    assert waived.policy_name == "read-only-root-filesystem"
    assert waived.rule_id == "SLM-K8S-009"
    assert waived.enforcement_level == "mandatory"
    assert waived.resource_name == "dev-qwen3-deployment"
    assert "readOnlyRootFilesystem" in waived.message
    assert waived.waiver is not None
    assert waived.waiver.reason == "vLLM compiles kernels into its package directory"
    assert waived.waiver.owner == "platform-team"
    assert waived.waiver.expires == "2026-03-01"
    # no pass is reported for the waived (rule, resource)
    assert not [r for r in report.passes if r.policy_name == "read-only-root-filesystem"]


@pytest.mark.parametrize("key", ["SLM-K8S-009", "slm-k8s-009"])
def test_waiver_by_id_and_urn(key: str) -> None:
    urn = resources_from(DEPLOYMENT)[0].urn
    report = run([waiver(policy=key, resource=urn)])
    assert len(report.waived) == 1 and report.mandatory_violations == 0


def test_expired_waiver_fails_at_the_rules_level() -> None:
    report = run([waiver(expires="2026-01-15")])
    (violation,) = report.violations
    assert violation.enforcement_level == "mandatory"
    assert "waiver expired on 2026-01-15" in violation.message
    assert "platform-team" in violation.message
    assert violation.waiver is not None and violation.waiver.expired
    assert report.mandatory_violations == 1
    assert not report.waived


def test_today_from_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2030-01-01")
    report = run([waiver()])
    assert report.mandatory_violations == 1


def test_waiver_for_another_resource_does_not_apply_and_is_reported_stale() -> None:
    report = run([waiver(resource="other")])
    assert report.mandatory_violations == 2 and not report.waived
    (stale,) = [r for r in report.results if r.policy_name == "waiver-validity" and r.status == "violation"]
    assert "names resource 'other', which this stack does not declare: it is stale" in stale.message


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        (
            {
                "policy": "read-only-root-filesystem",
                "resource": "dev-qwen3-deployment",
                "owner": "x",
                "expires": "2026-03-01",
            },
            "missing or empty reason",
        ),
        (waiver(owner=" "), "missing or empty owner"),
        (waiver(expires="next year"), "not a YYYY-MM-DD date"),
        (waiver(policy="read-only-rootfs"), "not a waivable policy"),
        (waiver(policy="waived-results"), "not a waivable policy"),
    ],
)
def test_malformed_waiver_is_reported_and_not_applied(entry: dict[str, str], text: str) -> None:
    report = run([entry])
    rule_violations = [r for r in report.violations if r.policy_name == "read-only-root-filesystem"]
    assert rule_violations, "a malformed waiver must not waive anything"
    problems = [r for r in report.violations if r.policy_name == "waiver-validity"]
    assert problems and text in problems[0].message
    assert problems[0].rule_id == "SLM-GOV-001"


def test_waivers_not_json_is_reported() -> None:
    report = run("[{not json")
    assert any("not valid JSON" in r.message for r in report.violations if r.policy_name == "waiver-validity")


def test_waived_results_must_stay_advisory() -> None:
    from infra.policy.pack_config import PolicyConfigError

    with pytest.raises(PolicyConfigError, match="waived-results"):
        run([waiver()], config={"all": "mandatory"})


def test_environment_configs_keep_waived_results_advisory() -> None:
    for path in sorted((Path(__file__).resolve().parents[2] / "policies" / "config").glob("*.json")):
        assert json.loads(path.read_text())["waived-results"] == "advisory", path


def test_no_state_leaks_between_runs() -> None:
    run([waiver()])
    report = run([])
    assert not report.waived


def test_unknown_value_is_not_run_and_advisory() -> None:
    entries = json.loads(json.dumps(DEPLOYMENT))
    entries[0]["props"]["spec"]["template"]["spec"]["containers"][0]["securityContext"] = "<unknown>"
    resources = resources_from(entries)
    assert resources[0].inputs["spec"]["template"]["spec"]["containers"][0]["securityContext"] is UNKNOWN
    report = run_policy_pack(resources, CONFIG, {"today": "2026-01-15"})
    (not_run,) = report.not_run
    assert not_run.policy_name == "read-only-root-filesystem"
    assert not_run.enforcement_level == "advisory"
    assert "can't run policy" in not_run.message
    assert report.mandatory_violations == 0
