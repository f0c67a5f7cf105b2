"""Environment configs reconciled as the Pulumi CLI does, and the pack's entry points."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.policy.analyzer import load_pack, reconciled_levels, run_policy_pack
from infra.policy.fixtures import resources_from
from infra.policy.pack_config import BINDING_POLICY, PolicyConfigError, bind_level, verify_binding

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "policies"
CONFIG_DIR = PACK_DIR / "config"
NAMESPACE = [{"type": "kubernetes:core/v1:Namespace", "name": "m", "props": {"metadata": {"name": "m"}}}]


def test_dev_is_advisory_prod_is_mandatory() -> None:
    dev = reconciled_levels(CONFIG_DIR / "dev.json")
    staging = reconciled_levels(CONFIG_DIR / "staging.json")
    prod = reconciled_levels(CONFIG_DIR / "prod.json")
    assert dev["read-only-root-filesystem"].enforcement_level == "advisory"
    assert dev["min-replicas"].enforcement_level == "disabled"
    assert staging["read-only-root-filesystem"].enforcement_level == "mandatory"
    pack = load_pack(PACK_DIR)
    for name in {r.name for r in pack.RULES} - set(pack.ALWAYS_ADVISORY):
        assert prod[name].enforcement_level == "mandatory", name
    assert prod["waived-results"].enforcement_level == "advisory"
    assert prod["image-tag-pinned"].properties == {"requireDigest": True}
    assert prod["aks-no-spot-gpu"].properties == {"allowSpot": False}
    assert prod["min-replicas"].properties == {"minReplicas": 2}
    assert prod["image-volume-pinned"].properties == {"requireDigest": True, "allowedPullPolicies": ["IfNotPresent"]}
    # defaults come from the config schema
    assert dev["allowed-image-registries"].properties["allowedRepositories"][0] == "docker.io/vllm/vllm-openai"


def test_a_level_that_lists_its_registry_keeps_the_engines_repositories() -> None:
    """A level file that adds the stack's registry (weights images, docs/image-volume-weights.md) repeats the pack's
    defaults: listing a repository must never drop an engine's."""
    from policies.rules.allowed_image_registries import DEFAULT_REPOSITORIES

    for level in ("dev", "staging", "prod"):
        listed = reconciled_levels(CONFIG_DIR / f"{level}.json")["allowed-image-registries"].properties
        assert set(DEFAULT_REPOSITORIES) <= set(listed["allowedRepositories"]), level


def test_unknown_property_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"all": "mandatory", "waived-results": "advisory", "image-tag-pinned": {"requireDigests": True}})
    )
    with pytest.raises(PolicyConfigError, match=r"bad\.json.*image-tag-pinned.*'requireDigests'"):
        reconciled_levels(path)


def test_wrong_type_and_unknown_policy_and_level_are_errors(tmp_path: Path) -> None:
    cases = {
        "type.json": {"min-replicas": {"minReplicas": "two"}},
        "policy.json": {"no-such-policy": "mandatory"},
        "level.json": {"all": "strict"},
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(content))
        with pytest.raises(PolicyConfigError, match=name.replace(".", r"\.")):
            reconciled_levels(path)


def test_config_file_drives_a_run() -> None:
    resources = []  # an empty stack: only stack policies may speak, and none has anything to check
    report = run_policy_pack(resources, CONFIG_DIR / "prod.json", {"environment": "prod"})
    assert report.config_source.endswith("prod.json")
    assert report.environment == "prod"
    assert report.mandatory_violations == 0
    assert {p.name: p.enforcement_level for p in report.policies}["no-privileged-containers"] == "mandatory"


def test_every_property_has_a_schema_default() -> None:
    pack = load_pack(PACK_DIR)
    for rule in pack.RULES:
        for key, schema in rule.config.items():
            assert "default" in schema, f"{rule.name}.{key}"


def test_rule_metadata_is_complete_and_unique() -> None:
    pack = load_pack(PACK_DIR)
    ids = [r.id for r in pack.RULES]
    names = [r.name for r in pack.RULES]
    assert len(set(ids)) == len(ids) and len(set(names)) == len(names)
    for rule in pack.RULES:
        assert rule.severity in ("low", "medium", "high", "critical")
        assert rule.rationale and rule.title and rule.controls
        assert all(c.startswith(("CKV_", "CKV2_")) for c in rule.checkov)
    assert pack.RULES[-1].name == "waived-results", "waived-results must run after every other stack policy"


def test_main_builds_the_pack_with_the_same_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi_policy

    pack = load_pack(PACK_DIR)
    built: dict[str, object] = {}

    class FakePolicyPack:
        def __init__(self, name: str, policies: list[object], **kwargs: object) -> None:
            built.update(name=name, policies=policies, **kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", FakePolicyPack)
    source = (PACK_DIR / "__main__.py").read_text()
    ast.parse(source)
    monkeypatch.syspath_prepend(str(PACK_DIR))
    exec(
        compile(source, str(PACK_DIR / "__main__.py"), "exec"),
        {"__name__": "__main__", "__file__": str(PACK_DIR / "__main__.py")},
    )
    assert built["name"] == pack.PACK_NAME == "slm-deploy"
    assert built["policies"] is pack.POLICIES


def test_pack_yaml_and_requirements() -> None:
    text = (PACK_DIR / "PulumiPolicy.yaml").read_text()
    assert "runtime: python" in text
    pack = load_pack(PACK_DIR)
    assert f"version: {pack.PACK_VERSION}" in text
    assert "pulumi-policy==1.21.0" in (PACK_DIR / "requirements.txt").read_text()


@pytest.mark.parametrize(
    ("cwd", "code"),
    [(PACK_DIR, "import pack; print(len(pack.POLICIES))"), (REPO, "import policies.pack as p; print(len(p.POLICIES))")],
)
def test_pack_imports_both_ways(cwd: Path, code: str) -> None:
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60, check=True)
    assert int(out.stdout.strip()) == len(load_pack(PACK_DIR).POLICIES)


def test_docs_catalogue_is_current() -> None:
    from infra.policy.catalogue import render_catalogue

    assert (REPO / "docs" / "policies.md").read_text() == render_catalogue(PACK_DIR), (
        "docs/policies.md is stale: run python -m infra.policy.catalogue > docs/policies.md"
    )


# --------------------------------------------------------------------------- level binding


def test_every_level_file_binds_itself_and_keeps_the_binding_mandatory() -> None:
    for path in sorted(CONFIG_DIR.glob("*.json")):
        entry = json.loads(path.read_text())[BINDING_POLICY]
        assert entry["enforcementLevel"] == "mandatory", path
        assert entry["environment"] == path.stem and path.stem in entry["stacks"], path
        reconciled = reconciled_levels(path)[BINDING_POLICY]
        assert reconciled.enforcement_level == "mandatory"
    assert {bind_level(s, CONFIG_DIR).level for s in ("dev", "staging", "prod")} == {"dev", "staging", "prod"}


def _levels(tmp_path: Path, **stacks: list[str]) -> Path:
    for level, bound in stacks.items():
        entry = {"enforcementLevel": "mandatory", "environment": level, "stacks": bound}
        (tmp_path / f"{level}.json").write_text(json.dumps({"all": "mandatory", BINDING_POLICY: entry}))
    return tmp_path


def test_binding_by_name_pattern_and_default(tmp_path: Path) -> None:
    config = _levels(tmp_path, dev=["dev", "dev-*"], staging=["staging", "*-canary"], prod=["prod"])
    found = {s: bind_level(s, config) for s in ("dev", "dev-alice", "eu-canary", "prod", "sandbox", "DEV")}
    assert {s: b.level for s, b in found.items()} == {
        "dev": "dev",
        "dev-alice": "dev",
        "eu-canary": "staging",
        "prod": "prod",
        "sandbox": "prod",
        "DEV": "prod",  # names are case-sensitive, like Pulumi's
    }
    assert found["dev-alice"].describe() == "bound by the pattern 'dev-*' in dev.json"
    assert found["sandbox"].matched is None and "strictest" in found["sandbox"].describe()
    assert found["eu-canary"].config_file == config / "staging.json"


def test_a_name_wins_over_a_pattern_and_ambiguity_is_an_error(tmp_path: Path) -> None:
    config = _levels(tmp_path, dev=["dev-*"], staging=["dev-canary"], prod=["prod", "*-canary"])
    assert bind_level("dev-canary", config).level == "staging"
    with pytest.raises(PolicyConfigError, match="'dev-x-canary' is bound by several level files"):
        bind_level("dev-x-canary", _levels(tmp_path, dev=["dev-*"], staging=[], prod=["*-canary"]))
    with pytest.raises(PolicyConfigError, match="'prod' is bound by several level files"):
        bind_level("prod", _levels(tmp_path, dev=["prod"], staging=[], prod=["prod"]))


def test_malformed_bindings_are_errors(tmp_path: Path) -> None:
    (tmp_path / "prod.json").write_text(json.dumps({BINDING_POLICY: {"stacks": "prod"}}))
    with pytest.raises(PolicyConfigError, match="stacks must be a list"):
        bind_level("prod", tmp_path)
    (tmp_path / "prod.json").unlink()
    _levels(tmp_path, dev=["dev"])
    with pytest.raises(PolicyConfigError, match=r"no prod\.json"):
        bind_level("sandbox", tmp_path)


def test_a_level_file_must_judge_its_own_binding(tmp_path: Path) -> None:
    binding = bind_level("prod", CONFIG_DIR)
    verify_binding(binding, "mandatory", {"environment": "prod", "stacks": ["prod"]})
    for level, properties in (
        ("advisory", {"environment": "prod"}),
        ("disabled", {"environment": "prod"}),
        ("mandatory", {"environment": "dev"}),
        ("mandatory", {"environment": ""}),
    ):
        with pytest.raises(PolicyConfigError, match="must be mandatory with environment 'prod'"):
            verify_binding(binding, level, properties)
    with pytest.raises(PolicyConfigError, match="no 'environment-binding' policy"):
        verify_binding(binding, None, {})


def test_a_run_without_a_level_file_is_refused() -> None:
    """No --policy-pack-config (every policy at its default level): the binding rule says so."""
    report = run_policy_pack(resources_from(NAMESPACE), {}, {"environment": "prod"})
    (violation,) = [r for r in report.violations if r.policy_name == BINDING_POLICY]
    assert violation.blocking and "names no environment" in violation.message


def test_the_wrong_level_file_for_a_stack_is_refused_under_the_cli() -> None:
    """The Pulumi CLI has no binding of its own: a pipeline passing dev.json for the prod stack (whose file
    also says dev) is refused by the policy, which reads the stack's name from the URNs."""
    resources = resources_from(
        [{**NAMESPACE[0], "urn": "urn:pulumi:prod::slm-deploy::kubernetes:core/v1:Namespace::m"}]
    )
    report = run_policy_pack(resources, CONFIG_DIR / "dev.json", {"environment": "dev"})
    (violation,) = [r for r in report.violations if r.policy_name == BINDING_POLICY]
    assert violation.blocking and "stack 'prod' is not bound to the 'dev' level" in violation.message
    right = run_policy_pack(resources, CONFIG_DIR / "prod.json", {"environment": "prod"})
    assert not [r for r in right.violations if r.policy_name == BINDING_POLICY]
