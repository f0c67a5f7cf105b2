"""The real Pulumi engine for the cluster tests: ``scripts/pulumi.sh`` as users run it, and what it reports.

The CLI, the Kubernetes provider and the Python language host are those ``scripts/cluster-tools.sh pulumi``
builds. Policy results are read from the engine's event log (``--event-log``): ``pulumi preview --json``
carries none (pulumi/pulumi#18851), while the event log has one ``policyEvent`` per violation and one
``policyAnalyzeSummaryEvent`` per resource the pack judged (plus ``policyAnalyzeStackSummaryEvent`` when
the stack policies ran), so "the resources the engine reached" is exact rather than guessed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.renders import SLM_DEPLOY
from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "pulumi.sh"
PACK = ROOT / "policies"
#: The engine's names of enforcement levels (apitype.PolicyEvent) and the pack's.
ENGINE_LEVELS = {"warning": "advisory", "advisory": "advisory", "mandatory": "mandatory", "remediate": "remediate"}

#: (policy name, resource URN or "" for the stack, enforcement level).
Finding = tuple[str, str, str]


def _stack_level(urn: str) -> str:
    return "" if "::pulumi:pulumi:Stack::" in urn else urn


@dataclass
class EngineRun:
    """One CLI run: its exit status, output and the events of its event log."""

    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event[kind] for event in self.events if kind in event]

    def findings(self) -> set[Finding]:
        """Violations; a stack policy's come on the Stack resource's URN, which check reports as no resource."""
        return {
            (e["policyName"], _stack_level(e.get("resourceUrn", "")), ENGINE_LEVELS[e["enforcementLevel"]])
            for e in self.of("policyEvent")
        }

    def judged(self) -> set[str]:
        """URNs of the resources the pack judged."""
        return {e["resourceUrn"] for e in self.of("policyAnalyzeSummaryEvent")}

    def stack_judged(self) -> bool:
        return bool(self.of("policyAnalyzeStackSummaryEvent"))


@dataclass(frozen=True)
class Pulumi:
    """``bash scripts/pulumi.sh`` with its state in ``state`` and the tools of ``bin_dir``."""

    state: Path
    bin_dir: Path
    #: None: no KUBECONFIG at all (the provider takes it as an input, which renderYamlToDirectory refuses).
    kubeconfig: Path | None

    def run(
        self, *args: str, project: Path | None = None, event_log: Path | None = None, timeout: float = 900
    ) -> EngineRun:
        env = {
            **os.environ,
            "SLM_PULUMI_STATE_DIR": str(self.state),
            "SLM_PULUMI_BIN_DIR": str(self.bin_dir),
            "PULUMI_CONFIG_PASSPHRASE": "slm-deploy-tests",
        }
        env.pop("PULUMI_BACKEND_URL", None)
        env.pop("KUBECONFIG", None)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        if project is not None:
            env["SLM_PULUMI_PROJECT"] = str(project)
        extra = []
        if event_log is not None:
            # --event-log is one of the CLI's debug flags.
            env["PULUMI_DEBUG_COMMANDS"] = "true"
            extra = ["--event-log", str(event_log)]
        result = subprocess.run(
            ["bash", str(SCRIPT), *args, *extra, "--non-interactive"],
            env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        events = []
        if event_log is not None and event_log.exists():
            events = [json.loads(line) for line in event_log.read_text().splitlines() if line.strip()]
        return EngineRun(result.returncode, result.stdout, result.stderr, events)


def project_copy(directory: Path, stacks: Mapping[str, Mapping[str, Any]]) -> Path:
    """A project folder running the repository's program with the given stack files (``config`` maps).

    Its Pulumi.yaml is the repository's, with the program and the virtualenv named by absolute path.
    """
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["main"] = str(ROOT / project["main"])
    project["runtime"]["options"]["virtualenv"] = str(ROOT / project["runtime"]["options"]["virtualenv"])
    (directory / "stacks").mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    for name, config in stacks.items():
        (directory / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": dict(config)}))
    return directory


#: What the engine tests store for a stack secret (a stack file's ``secure:`` values are stand-in ciphertexts).
TEST_SECRET = "slm-deploy-engine-test-secret-value"


def with_real_secrets(pulumi: Pulumi, project: Path, stack: str, config: dict[str, Any]) -> None:
    """Store each ``slm-deploy:secrets`` entry the stack file gives as ``secure:`` with the real CLI.

    An example stack's ciphertext is a stand-in (the offline plan uses a placeholder for it); the engine decrypts
    with the stack's own passphrase salt, so the test sets the secret the way a user does:
    ``pulumi config set --secret --path 'slm-deploy:secrets.<name>'``. ``config`` is the map ``project`` was
    written from, without those entries.
    """
    names = [name for name, value in (config.get("slm-deploy:secrets") or {}).items() if isinstance(value, dict)]
    if not names:
        return
    created = pulumi.run("stack", "init", stack, project=project)
    assert created.returncode == 0, created.output
    for name in names:
        stored = pulumi.run(
            "config", "set", "--secret", "--path", f"slm-deploy:secrets.{name}", TEST_SECRET, "--stack", stack,
            project=project,
        )  # fmt: skip
        assert stored.returncode == 0, stored.output


def without_stand_in_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the ``secure:`` stand-ins of ``slm-deploy:secrets`` (:func:`with_real_secrets` sets them)."""
    secrets = config.get("slm-deploy:secrets") or {}
    plain = {name: value for name, value in secrets.items() if not isinstance(value, dict)}
    return {
        **{k: v for k, v in config.items() if k != "slm-deploy:secrets"},
        **({"slm-deploy:secrets": plain} if plain else {}),
    }


def stack_config(stack: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    return config


def level_file(stack: str) -> Path:
    """The level file ``slm-deploy check`` judges ``stack`` at (its binding; prod when none binds it)."""
    for path in sorted((PACK / "config").glob("*.json")):
        binding = json.loads(path.read_text()).get("environment-binding", {})
        if isinstance(binding, dict) and stack in binding.get("stacks", []):
            return path
    return PACK / "config" / "prod.json"


def check_findings(stack: str, root: Path) -> tuple[int, set[Finding], dict[str, Any]]:
    """``slm-deploy check --stack STACK --root ROOT --format json``: exit status, violations, the report."""
    result = subprocess.run(
        [str(SLM_DEPLOY), "check", "--stack", stack, "--root", str(root), "--format", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), f"slm-deploy check exited {result.returncode}:\n{result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout)
    findings = {
        (r["policyName"], r.get("resourceUrn") or "", r["enforcementLevel"])
        for r in report["results"]
        if r["status"] == "violation"
    }
    return result.returncode, findings, report
