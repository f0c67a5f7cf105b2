"""Canary rollouts (models[].versions, docs/canary.md): typed config with one-line errors, the revisions' objects and
the weighted HTTPRoute in the render, weight changes in `slm-deploy diff`, both revisions in `slm-deploy cost`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.gitops.diff import diff_command
from infra.plan.stack import StackPlan
from tests.conftest import ROOT, planned

STACK = (ROOT / "stacks" / "Pulumi.canary.yaml").read_text(encoding="utf-8")


def _project(tmp: Path, text: str = STACK) -> Path:
    (tmp / "stacks").mkdir(parents=True, exist_ok=True)
    (tmp / "stacks" / "Pulumi.canary.yaml").write_text(text, encoding="utf-8")
    shutil.copy(ROOT / "Pulumi.yaml", tmp / "Pulumi.yaml")
    return tmp


def _edited(old: str, new: str) -> str:
    assert old in STACK, old
    return STACK.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "weight: 10",
            "weight: 20",
            "slm-deploy:models[0].versions: weights add up to 110 (stable 90 + canary 20): they are percent",
        ),
        ("name: v2", "name: v1", "slm-deploy:models[0].versions: stable and canary are both named 'v1'"),
        ("name: v2", "name: 2v", "slm-deploy:models[0].versions.canary.name: version name '2v' is not a DNS-1035"),
        ("weight: 10", "weight: -10", "slm-deploy:models[0].versions.canary.weight: must be at least 0"),
        ("maxNumSeqs: 128", "maxNumSeqs: 0", "slm-deploy:models[0].versions.canary.vllm.maxNumSeqs: must be at least"),
        (
            "          weight: 10\n",
            "          weight: 10\n          hardening: {runAsNonRoot: false}\n",
            "slm-deploy:models[0].versions.canary.hardening: unknown key",
        ),
        (
            "accessMode: ReadWriteMany",
            "accessMode: ReadWriteOnce",
            "slm-deploy:models[0].cache.accessMode: both revisions mount the model cache",
        ),
        (
            "      replicas: 2\n" if "      replicas: 2\n" in STACK else "      servedModelName: qwen3-4b\n",
            "      servedModelName: qwen3-4b\n      inferencePool: {enabled: true}\n      replicas: 2\n",
            "slm-deploy:models[0].inferencePool.enabled: a model with versions (a canary rollout) cannot use",
        ),
        (
            "    enabled: true\n    hostname",
            "    enabled: false\n    hostname",
            "slm-deploy:models[0].versions: the weights split the entry point's HTTPRoute, but the model is not routed",
        ),
    ],
)
def test_bad_input_is_one_line_at_its_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    project = _project(tmp_path, _edited(old, new))
    result = CliRunner().invoke(app, ["validate", "--stack", "canary", "--root", str(project)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "stacks/Pulumi.canary.yaml" in result.stderr and message in result.stderr, result.stderr


def test_a_canary_in_prod_needs_an_engine_the_comparison_alert_reads(tmp_path: Path) -> None:
    text = _edited("slm-deploy:environment: staging", "slm-deploy:environment: prod").replace(
        "  slm-deploy:models:", "  slm-deploy:monitoring:\n    mode: none\n  slm-deploy:models:"
    )
    result = CliRunner().invoke(app, ["validate", "--stack", "canary", "--root", str(_project(tmp_path, text))])
    assert result.exit_code == 2
    assert "slm-deploy:models[0].versions: a canary in prod needs the stable-versus-canary comparison alert" in (
        result.stderr
    )


def test_each_revision_is_its_own_workload_and_the_route_splits_by_weight() -> None:
    plan: StackPlan = planned("canary", True)
    kinds = {(r.kind, r.inputs["metadata"]["name"]) for r in plan.run.resources if r.custom and "metadata" in r.inputs}
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert {(kind, "qwen3-4b-v1"), (kind, "qwen3-4b-v2")} <= kinds
        assert (kind, "qwen3-4b") not in kinds
    # The same weights in both revisions: one cache, shared (ReadWriteMany).
    assert [name for kind, name in kinds if kind == "PersistentVolumeClaim"] == ["qwen3-4b-cache"]
    deployments = {r.inputs["metadata"]["name"]: r.inputs for r in plan.run.resources if r.kind == "Deployment"}
    for version, track in (("v1", "stable"), ("v2", "canary")):
        spec = deployments[f"qwen3-4b-{version}"]["spec"]
        assert spec["selector"]["matchLabels"]["slm-deploy.io/version"] == version
        assert spec["template"]["metadata"]["labels"]["slm-deploy.io/track"] == track
    assert "--max-num-seqs=128" in deployments["qwen3-4b-v2"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(
        a.startswith("--max-num-seqs")
        for a in deployments["qwen3-4b-v1"]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    route = next(r for r in plan.run.resources if r.kind == "HTTPRoute" and r.inputs["metadata"]["name"] == "qwen3-4b")
    refs = route.inputs["spec"]["rules"][0]["backendRefs"]
    assert [(ref["name"], ref["weight"]) for ref in refs] == [("qwen3-4b-v1", 90), ("qwen3-4b-v2", 10)]
    monitor = next(
        r for r in plan.run.resources if r.kind == "ServiceMonitor" and r.inputs["metadata"]["name"] == "qwen3-4b"
    )
    relabel = monitor.inputs["spec"]["endpoints"][0]["relabelings"][0]
    assert relabel["targetLabel"] == "model_version"


def test_a_canary_with_other_weights_gets_its_own_cache(tmp_path: Path) -> None:
    from infra.plan.stack import plan_stack

    text = _edited("          weight: 10\n", "          weight: 10\n          modelId: Qwen/Qwen3-4B-Instruct-2507\n")
    plan = plan_stack("canary", _project(tmp_path, text), preview=True)
    claims = sorted(r.inputs["metadata"]["name"] for r in plan.run.resources if r.kind == "PersistentVolumeClaim")
    assert claims == ["qwen3-4b-cache", "qwen3-4b-v2-cache"]
    canary = next(r for r in plan.run.resources if r.kind == "Deployment" and r.name == "qwen3-4b-v2-deployment")
    volumes = {v["name"]: v for v in canary.inputs["spec"]["template"]["spec"]["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == "qwen3-4b-v2-cache"


def test_diff_shows_a_weight_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base"
    rendered = CliRunner().invoke(
        app, ["render", "--stack", "canary", "--root", str(_project(tmp_path / "before")), "--out", str(base)]
    )
    assert rendered.exit_code == 0, rendered.output
    promoted = _edited("          weight: 90", "          weight: 50").replace("weight: 10", "weight: 50")
    project = _project(tmp_path / "after", promoted)
    assert diff_command(project, "canary", str(base), "json", None) == 1
    changes = json.loads(capsys.readouterr().out)["changes"]
    route = next(c for c in changes if c["kind"] == "HTTPRoute")
    fields = {f["path"]: (f["old"], f["new"]) for f in route["fields"]}
    assert fields == {
        "spec.rules[0].backendRefs[name=qwen3-4b-v1].weight": (90, 50),
        "spec.rules[0].backendRefs[name=qwen3-4b-v2].weight": (10, 50),
    }
    assert [c["kind"] for c in changes] == ["HTTPRoute"]
    assert diff_command(project, "canary", str(base), "markdown", None) == 1
    assert "backendRefs[name=qwen3-4b-v2].weight" in capsys.readouterr().out


def test_cost_covers_both_revisions(root: Path) -> None:
    result = CliRunner().invoke(app, ["cost", "--stack", "canary", "--root", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # One A10 node per revision's replica, both priced under the model.
    nodes = [line for line in report["lines"] if line["category"] == "share" and line["model"] == "qwen3-4b"]
    assert [line["quantity"]["min"] for line in nodes] == [1, 1]
    assert report["models"]["qwen3-4b"]["min"] == pytest.approx(sum(line["monthly"]["min"] for line in nodes))
    assert sum(r["gpus"]["min"] for r in report["requests"] if r["model"] == "qwen3-4b") == 2
    text = CliRunner().invoke(app, ["cost", "--stack", "canary", "--root", str(root)]).stdout
    per_model = text.split("per model (min - max):\n")[1].split("\n")
    assert per_model[0].startswith("  qwen3-4b: USD ") and not per_model[1].startswith("  qwen3-4b")
