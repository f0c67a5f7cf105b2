"""The real Pulumi engine on the local control plane: up, preview, destroy, CrossGuard, rendering, protection.

Everything runs through ``bash scripts/pulumi.sh`` (the CLI, the Kubernetes provider and the Python
language host built from Go modules) against the cluster of ``scripts/local-cluster.sh``:

* the ``local`` stack goes up with the policy pack at its level (dev), a second preview finds nothing to
  change, destroy leaves nothing behind, and no tracked file was written;
* CrossGuard parity: for each reference stack and each insecure prod variant of
  tests/policies/test_reviewer_variants.py, ``pulumi preview --policy-pack`` and ``slm-deploy check`` report
  the same rules on the same resources at the same levels. Nothing Azure can be previewed here (no
  azure-native provider, no credentials): an AKS stack is compared as the same stack on an existing
  cluster (``cluster: {mode: existing}``), for the engine and for check alike, so the AKS rules are not
  compared. Nor can a Helm release (no chart repository): the engine stops at the first one, and the
  comparison covers exactly the resources the pack judged (the event log's
  ``policyAnalyzeSummaryEvent``), plus the stack policies when the engine got that far;
* the Kubernetes provider's own rendering (``renderYamlToDirectory``) of ``local`` equals
  ``slm-deploy render``, object by object, once what the provider adds is set aside;
* in a prod-level copy of ``local``, the engine refuses to delete the protected model cache claim.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Cluster
from tests.cluster.pulumi_engine import (
    PACK,
    EngineRun,
    Finding,
    Pulumi,
    check_findings,
    level_file,
    project_copy,
    stack_config,
    with_real_secrets,
    without_stand_in_secrets,
)
from tests.cluster.renders import Rendered
from tests.conftest import ROOT
from tests.policies.test_reviewer_variants import VARIANTS

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

#: How the Kubernetes provider reports a Helm release whose chart cannot be downloaded (no network here): from a
#: chart repository (its index) or from an OCI registry.
CHART_UNREACHABLE = re.compile(
    r"helm\.sh/v3:Release resource '[^']+': property chart value \{[^}]+\} has a problem: "
    r"(looks like \"[^\"]+\" is not a valid chart repository or cannot be reached|failed to perform \"FetchReference\")"
)

NAMESPACE = "slm-smollm2"
MODEL = "smollm2"
PART_OF = "app.kubernetes.io/part-of=slm-deploy"


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.5)


def _names(cluster: Cluster, *args: str) -> list[str]:
    return cluster.kubectl("get", *args, "-o", "name", check=False).stdout.split()


def _tracked() -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in [ROOT / "Pulumi.yaml", *sorted((ROOT / "stacks").glob("*.yaml"))]}


def test_the_local_stack_goes_up_and_is_destroyed(pulumi: Pulumi, cluster: Cluster, tmp_path: Path) -> None:
    before = _tracked()
    up = pulumi.run(
        "up", "--stack", "local", "--yes", "--policy-pack", "policies",
        "--policy-pack-config", "policies/config/dev.json", event_log=tmp_path / "up.json",
    )  # fmt: skip
    assert up.returncode == 0, up.output
    # The pack ran under the CLI with the stack's config: the stack policies ran, nothing mandatory failed,
    # and environment-binding saw slm-deploy:environment (it reported it unset before the fix).
    assert up.stack_judged(), up.output
    assert not [f for f in up.findings() if f[2] == "mandatory"], up.findings()
    assert "environment-binding" not in {f[0] for f in up.findings()}
    assert len(up.judged()) >= 15, up.judged()

    cluster.kubectl("rollout", "status", "-n", NAMESPACE, f"deployment/{MODEL}", "--timeout=120s")
    claim = cluster.kubectl(
        "get", "pvc", f"{MODEL}-cache", "-n", NAMESPACE, "-o", "jsonpath={.status.phase} {.spec.volumeName}"
    )  # fmt: skip
    phase, volume = claim.stdout.split()
    assert phase == "Bound"
    assert _names(cluster, "prometheusrules,configmaps", "-n", "monitoring", "-l", PART_OF)

    again = pulumi.run("preview", "--stack", "local", "--expect-no-changes")
    assert again.returncode == 0, again.output

    down = pulumi.run("destroy", "--stack", "local", "--yes")
    assert down.returncode == 0, down.output
    _wait_until(lambda: not _names(cluster, "namespace", NAMESPACE), f"namespace {NAMESPACE} was not deleted")
    _wait_until(lambda: not _names(cluster, "persistentvolume", volume), f"the claim's volume {volume} was not deleted")
    assert not _names(cluster, "prometheusrules,servicemonitors,configmaps", "-n", "monitoring", "-l", PART_OF)
    assert _tracked() == before, "a tracked file was written"


# --- CrossGuard parity ------------------------------------------------------------------------------------

# The example stacks too: nap (Karpenter pools, run here as on an existing cluster) and quotas (the AI Gateway
# objects, Redis, the servers' key policies).
REFERENCE_STACKS = ("dev", "staging", "prod", "local", "canary", "nap", "quotas")
#: Rules judging the cost estimate that ``slm-deploy check`` computes and hands the pack (stack config
#: ``costEstimate``): the CLI prices nothing, so under the engine they are not applicable by design.
ESTIMATE_RULES = frozenset({"cost-unpriced", "monthly-budget"})
#: Variants the program accepts (a variant refused by validation never reaches a pack).
PROD_VARIANTS = sorted(name for name, (_, expected) in VARIANTS.items() if expected[0] != "validate")
#: Variants that change a Helm release's values: only a release the engine can fetch would show them.
HELM_VARIANTS = {name for name in PROD_VARIANTS if VARIANTS[name][1][-1] == "monitoring-release"}
#: Variants of an AKS GPU pool's settings: the stack runs here as on an existing cluster, which has no pools, so
#: engine and check agree on a stack without the finding (the offline tests show it).
AKS_POOL_VARIANTS = {"time-sliced-gpus"}
CASES = [
    *((stack, "", "as-is") for stack in REFERENCE_STACKS),
    *((stack, "", "without-charts") for stack in REFERENCE_STACKS if stack != "local"),  # local has none
    *(("prod", v, "as-is" if v in HELM_VARIANTS else "without-charts") for v in PROD_VARIANTS),
]


def _without_charts(config: dict[str, Any]) -> None:
    """The same stack installing no chart: KEDA and the gateway controller not installed, monitoring objects only."""
    config.setdefault("slm-deploy:keda", {})["install"] = False
    if "slm-deploy:entryPoint" in config:
        config["slm-deploy:entryPoint"]["installController"] = False
    config.setdefault("slm-deploy:monitoring", {})["mode"] = "existing"


def _compare(run: EngineRun, checked: set[Finding]) -> tuple[set[Finding], set[Finding]]:
    judged = run.judged()
    stack_ran = run.stack_judged()

    def reached(finding: Finding) -> bool:
        if finding[0] in ESTIMATE_RULES:
            return False
        return finding[1] in judged if finding[1] else stack_ran

    return {f for f in run.findings() if reached(f)}, {f for f in checked if reached(f)}


@pytest.mark.parametrize(("stack", "variant", "charts"), CASES, ids=["-".join(filter(None, c)) for c in CASES])
def test_crossguard_and_slm_deploy_check_agree(
    pulumi: Pulumi, stack: str, variant: str, charts: str, tmp_path: Path
) -> None:
    config = stack_config(stack)
    if variant:
        VARIANTS[variant][0](config)
    if config["slm-deploy:cluster"]["mode"] == "aks":
        # No Azure here: the same stack on an existing cluster, judged the same way by both; each model sized on
        # its pool's VM size, whole (prod's qwen3-8b runs on a MIG slice of an A100: without the pool, sizing
        # would pick the cheapest fit, two A10s).
        vm_sizes = {pool["name"]: pool["vmSize"] for pool in config["slm-deploy:cluster"].get("gpuPools") or []}
        for model in config["slm-deploy:models"]:
            gpu = model.get("gpu") or {}
            if gpu.get("pool") in vm_sizes:
                model["gpu"] = {**{k: v for k, v in gpu.items() if k != "pool"}, "vmSize": vm_sizes[gpu["pool"]]}
        config["slm-deploy:cluster"] = {"mode": "existing"}
    if charts == "without-charts":
        _without_charts(config)
    project = project_copy(tmp_path / "project", {stack: without_stand_in_secrets(config)})
    engine = dataclasses.replace(pulumi, state=tmp_path / "state")
    with_real_secrets(engine, project, stack, config)
    run = engine.run(
        "preview", "--stack", stack, "--policy-pack", str(PACK), "--policy-pack-config", str(level_file(stack)),
        project=project, event_log=tmp_path / "events.json",
    )  # fmt: skip
    _, checked, report = check_findings(stack, project)
    assert run.judged(), f"the pack judged no resource:\n{run.output}"
    by_engine, by_check = _compare(run, checked)
    assert by_engine == by_check, (
        f"only the engine: {sorted(by_engine - by_check)}\nonly check: {sorted(by_check - by_engine)}"
    )
    if run.stack_judged():
        # The whole stack was previewed: every resource check judged, and the stack policies.
        assert {r["resourceUrn"] for r in report["results"] if r.get("resourceUrn")} <= run.judged()
        mandatory = any(level == "mandatory" for _, _, level in by_engine)
        assert (run.returncode != 0) == mandatory, run.output
    else:
        # A chart cannot be fetched here: the engine stopped at the first Helm release it reached, whichever that
        # was (a chart repository's index or an OCI registry, depending on the order of the engine's steps).
        assert charts == "as-is" and CHART_UNREACHABLE.search(run.output), run.output
    if variant and VARIANTS[variant][1][0] == "check" and variant not in AKS_POOL_VARIANTS:
        rule, resource = VARIANTS[variant][1][1:]
        if variant in HELM_VARIANTS:  # what the engine cannot show here: it never reaches the release
            assert not [urn for urn in run.judged() if urn.endswith(f"::{resource}")]
        else:
            assert any(f[0] == rule and f[2] == "mandatory" for f in by_engine), by_engine


# --- the provider's rendering ----------------------------------------------------------------------------

#: A program that runs the project's, with every Kubernetes provider writing YAML instead of applying it.
RENDER_PROGRAM = """\
import runpy

import pulumi


def render_to_directory(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if args.type_ != "pulumi:providers:kubernetes":
        return None
    return pulumi.ResourceTransformResult(props={{**args.props, "renderYamlToDirectory": {out!r}}}, opts=args.opts)


pulumi.runtime.register_resource_transform(render_to_directory)
runpy.run_path({program!r}, run_name="__main__")
"""

#: Metadata the API server or the provider owns, not the program.
PROVIDER_METADATA = ("creationTimestamp", "generation", "managedFields", "resourceVersion", "uid")


def _normalised(document: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    metadata = document.setdefault("metadata", {})
    for key in PROVIDER_METADATA:
        metadata.pop(key, None)
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if not k.startswith("pulumi.com/")}
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    document.pop("status", None)
    return document


def _key(document: dict[str, Any]) -> tuple[str, str, str, str]:
    metadata = document["metadata"]
    return document["apiVersion"], document["kind"], metadata.get("namespace", ""), metadata["name"]


def test_the_providers_rendering_equals_slm_deploy_render(
    pulumi: Pulumi, rendered: Callable[[str], Rendered], tmp_path: Path
) -> None:
    out = tmp_path / "provider-render"
    project = project_copy(tmp_path / "project", {"local": stack_config("local")})
    program = project / "render-program"
    program.mkdir()
    (program / "__main__.py").write_text(RENDER_PROGRAM.format(out=str(out), program=str(ROOT / "infra" / "program")))
    settings = yaml.safe_load((project / "Pulumi.yaml").read_text())
    settings["main"] = str(program)
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))

    engine = dataclasses.replace(pulumi, state=tmp_path / "state", kubeconfig=None)
    up = engine.run("up", "--stack", "local", "--yes", project=project)
    assert up.returncode == 0, up.output
    by_provider = {}
    for path in sorted(out.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                by_provider[_key(document)] = _normalised(document)
    ours = {_key(document): _normalised(document) for _, document in rendered("local")}
    assert sorted(by_provider) == sorted(ours)
    for key, document in ours.items():
        assert by_provider[key] == document, key


# --- protection --------------------------------------------------------------------------------------------


def test_the_engine_refuses_to_delete_a_protected_claim(pulumi: Pulumi, cluster: Cluster, tmp_path: Path) -> None:
    """prod protects stateful resources (``protectStateful`` defaults to on outside dev)."""
    stack = "local-prod"
    config = {**stack_config("local"), "slm-deploy:environment": "prod"}
    project = project_copy(tmp_path / "project", {stack: config})
    engine = dataclasses.replace(pulumi, state=tmp_path / "state")
    up = engine.run("up", "--stack", stack, "--yes", project=project)
    assert up.returncode == 0, up.output
    claim = f"persistentvolumeclaim/{MODEL}-cache"
    try:
        refused = engine.run("destroy", "--stack", stack, "--yes", project=project)
        assert refused.returncode != 0
        assert "protected" in refused.output, refused.output
        assert _names(cluster, claim, "-n", NAMESPACE) == [claim]
    finally:
        unprotected = engine.run("state", "unprotect", "--all", "--stack", stack, "--yes", project=project)
        down = engine.run("destroy", "--stack", stack, "--yes", project=project)
        assert unprotected.returncode == 0 and down.returncode == 0, down.output
    _wait_until(lambda: not _names(cluster, "namespace", NAMESPACE), f"namespace {NAMESPACE} was not deleted")
