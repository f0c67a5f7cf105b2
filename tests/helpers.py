"""Small helpers for tests: reading recorded resources, and tools that may be missing here."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest

from infra.config.model import ModelConfig
from infra.config.secrets import SecretValue
from infra.plan.model import RecordedResource


def of_kind(resources: Iterable[RecordedResource], kind: str) -> list[RecordedResource]:
    return [r for r in resources if r.custom and r.kind == kind]


def one(resources: Iterable[RecordedResource], kind: str, name: str) -> RecordedResource:
    matches = [r for r in of_kind(resources, kind) if r.name == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def served_revisions(model: ModelConfig) -> list[tuple[str, ModelConfig, str]]:
    """Per Deployment of a model: its resource-name prefix, the model as that Deployment serves it, and its cache
    claim. One, named after the model, or one per revision of a canary rollout (docs/canary.md)."""
    from infra.config.versions import workload_name

    if model.versions is None:
        return [(model.name, model, f"{model.name}-cache")]
    own = model.canary_has_own_cache
    return [
        (
            workload_name(model.name, version.name),
            model.revision(version),
            f"{workload_name(model.name, version.name) if own and track == 'canary' else model.name}-cache",
        )
        for track, version in model.versions.by_track().items()
    ]


def pod_spec(deployment: RecordedResource) -> dict[str, Any]:
    spec: dict[str, Any] = deployment.inputs["spec"]["template"]["spec"]
    return spec


def unavailable(reason: str, *, module: bool = False) -> NoReturn:
    """Skip a test whose tool or server is not installed here; fail in CI, which installs it."""
    if os.environ.get("CI"):
        pytest.fail(f"CI installs what this test needs, yet {reason}")
    pytest.skip(reason, allow_module_level=module)


def installed(command: str, package: str) -> str:
    """The path of ``command``, or :func:`unavailable` naming the Debian package that has it."""
    path = shutil.which(command)
    if path is None:
        unavailable(f"{command} is not installed (Debian package '{package}'; scripts/run.sh test installs it)")
    return path


def gated_model_stack(environment: str = "dev") -> str:
    """A stack file with one vLLM model reading a Hugging Face token from a (ciphertext-only) secret."""
    return f"""config:
  slm-deploy:environment: {environment}
  slm-deploy:secrets:
    hfToken:
      secure: v1:c2FsdA==:bm90LWEtcmVhbC1jaXBoZXJ0ZXh0
  slm-deploy:models:
    - name: gated
      engine: vllm
      modelId: google/gemma-3-4b-it
      gpu: {{count: 1}}
      hfTokenSecret: hfToken
"""


def keyed_entry_point(keys: dict[str, str], **extra: Any) -> dict[str, Any]:
    """Stack keys for an entry point (cluster exposure, an existing TLS Secret) checking ``keys``.

    Returns the ``secrets`` and ``entryPoint`` keys of a stack, to merge into one; ``extra`` overrides entry point
    keys (``None`` leaves one out: ``apiKeys=None``).
    """
    entry = {
        "enabled": True,
        "hostname": "llm.example.com",
        "tls": {"secretName": "llm-tls"},
        "exposure": "cluster",
        "apiKeys": "gatewayKeys",
        **extra,
    }
    return {
        "secrets": {"gatewayKeys": SecretValue(plaintext=json.dumps(keys))},
        "entryPoint": {key: value for key, value in entry.items() if value is not None},
    }


def assert_renders_strictly_valid_and_passes_the_pack(
    stack: dict[str, Any], *, extra_repositories: Sequence[str] = ()
) -> None:
    """Plan ``stack`` under the mock engine: every manifest valid under the strict schemas of the stack's
    Kubernetes version, and no policy violation at the stack's environment level (no waivers).

    ``extra_repositories`` are image repositories the organisation adds to the level's allow-list (as a
    reviewed change to ``policies/config/<level>.json`` would), e.g. where it pushed the ONNX server image."""
    from infra.config.loader import validate_stack_config
    from infra.plan.engine import run_program
    from infra.plan.render import manifests
    from infra.plan.schema import validate_manifests
    from infra.platform import deploy
    from infra.policy.analyzer import run_policy_pack
    from policies.rules.allowed_image_registries import DEFAULT_REPOSITORIES
    from tests.conftest import ROOT

    config = validate_stack_config(stack, "test")
    run = run_program(lambda: deploy(config), "test", True)
    invalid = [
        r for r in validate_manifests(manifests(run.resources), config.kubernetes_version) if r.status != "valid"
    ]
    assert invalid == []
    level = json.loads((ROOT / "policies" / "config" / f"{config.environment}.json").read_text())
    if extra_repositories:
        listed = level.get("allowed-image-registries", {})
        level["allowed-image-registries"] = {
            "enforcementLevel": listed.get("enforcementLevel", level["all"]),
            "allowedRepositories": [*listed.get("allowedRepositories", DEFAULT_REPOSITORIES), *extra_repositories],
        }
    report = run_policy_pack(run.resources, level, {"environment": config.environment, "waivers": []})
    assert [(r.policy_name, r.resource_name) for r in report.results if r.status == "violation"] == []


def copy_project(root: Path, into: Path) -> Path:
    """A project folder at ``into`` with ``root``'s stacks and Pulumi.yaml, to edit a stack file in a test."""
    into.mkdir(parents=True)
    shutil.copytree(root / "stacks", into / "stacks")
    shutil.copy(root / "Pulumi.yaml", into / "Pulumi.yaml")
    return into
