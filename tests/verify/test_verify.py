"""verify orchestration against recorded Kubernetes API responses (the client's own models), no network."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from infra.config.loader import load_stack_file
from infra.config.stack import StackConfig
from infra.verify.expectations import Expectation, expectations_for
from infra.verify.report import Check, render_json, render_junit, render_text
from infra.verify.verify import rollout_status, verify_command, verify_stack

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STACK = """config:
  slm-deploy:environment: staging
  slm-deploy:models:
    - name: chat
      engine: vllm
      modelId: microsoft/Phi-4-mini-instruct
      replicas: 2
      gpu: {count: 1}
      cache: {accessMode: ReadWriteMany}
      hardening: {runAsUser: 20001}
    - name: micro
      engine: ollama
      modelId: qwen3:0.6b
      resources:
        requests: {cpu: "1", memory: 2Gi}
        limits: {cpu: "2", memory: 4Gi}
"""


def _recorded(name: str, klass: str, change: Any = None) -> Any:
    """A recorded API response, deserialized by the kubernetes client as it deserializes the wire."""
    from kubernetes.client import ApiClient

    data = json.loads((FIXTURES / name).read_text())
    if change:
        change(data)

    return ApiClient().deserialize(json.dumps(data), klass, "application/json")


@pytest.fixture
def config(tmp_path: Path) -> StackConfig:
    (tmp_path / "Pulumi.verify.yaml").write_text(STACK)
    return load_stack_file(tmp_path / "Pulumi.verify.yaml")


class FakeApi:
    def __init__(self, deployments: dict[tuple[str, str], Any], pods: dict[str, Any]) -> None:
        self.deployments = deployments
        self.pods = pods
        self.selectors: list[tuple[str, str]] = []

    def read_deployment(self, namespace: str, name: str) -> Any | None:
        return self.deployments.get((namespace, name))

    def list_pods(self, namespace: str, label_selector: str) -> Any:
        self.selectors.append((namespace, label_selector))
        return self.pods[namespace]


class FakeRunner:
    def __init__(self, fail: str | None = None) -> None:
        self.pods: list[tuple[str, Expectation]] = []
        self.smoked: list[str] = []
        self.fail = fail

    def runtime_checks(self, pod: str, expectation: Expectation) -> list[Check]:
        self.pods.append((pod, expectation))
        status = "failed" if self.fail == pod else "passed"
        return [Check(f"{expectation.model}/{pod}", "test_process_runs_as_the_configured_uid", status)]  # type: ignore[arg-type]

    def smoke(self, expectation: Expectation) -> Check:
        self.smoked.append(expectation.model)
        return Check(expectation.model, "chat completion through the Service", "passed", "8 token(s)")


def _micro_deployment(data: dict[str, Any]) -> None:
    data["metadata"].update(name="micro", namespace="slm-micro", generation=1)
    data["spec"]["replicas"] = 1
    data["spec"]["selector"]["matchLabels"] = {
        "app.kubernetes.io/instance": "micro",
        "app.kubernetes.io/name": "ollama",
    }
    data["status"].update(observedGeneration=1, replicas=1, updatedReplicas=1, readyReplicas=1, availableReplicas=1)


def _micro_pods(data: dict[str, Any]) -> None:
    data["items"] = data["items"][:1]
    data["items"][0]["metadata"].update(name="micro-7f-abcde", namespace="slm-micro")


def _api(**changes: Any) -> FakeApi:
    chat = _recorded("deployment-chat.json", "V1Deployment", changes.get("chat"))
    micro = _recorded("deployment-chat.json", "V1Deployment", _micro_deployment)
    return FakeApi(
        {("slm-chat", "chat"): chat, ("slm-micro", "micro"): micro},
        {
            "slm-chat": _recorded("pods-chat.json", "V1PodList"),
            "slm-micro": _recorded("pods-chat.json", "V1PodList", _micro_pods),
        },
    )


def test_expectations_come_from_the_stack_config(config: StackConfig) -> None:
    chat, micro = expectations_for(config)
    assert (chat.namespace, chat.deployment, chat.container, chat.uid, chat.ports) == (
        "slm-chat",
        "chat",
        "vllm",
        20001,
        [8000],
    )
    assert chat.cache_path == "/models" and chat.model_files == ["hf/hub/models--microsoft--Phi-4-mini-instruct"]
    assert chat.pid == 1 and chat.listen_scope == "namespace" and chat.read_only_root_filesystem
    assert (micro.container, micro.uid, micro.ports, micro.model_files) == (
        "ollama",
        10001,
        [11434],
        ["ollama/manifests"],
    )
    assert Expectation.from_dict(json.loads(chat.to_json())) == chat


def test_everything_rolled_out(config: StackConfig) -> None:
    api, runner = _api(), FakeRunner()
    report = verify_stack(config, api, runner, "verify")
    assert report.ok, report.checks
    # Ready, not-terminating pods only, in name order; one smoke request per model.
    assert [p for p, _ in runner.pods] == ["chat-6c9f7d8b5-a1b2c", "chat-6c9f7d8b5-x2x9q", "micro-7f-abcde"]
    assert runner.smoked == ["chat", "micro"]
    assert api.selectors[0] == ("slm-chat", "app.kubernetes.io/instance=chat,app.kubernetes.io/name=vllm")
    assert report.summary() == "7 passed, 0 failed, 0 skipped"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["status"].update(observedGeneration=3), "has not seen generation 4"),
        (lambda d: d["status"].update(updatedReplicas=1, replicas=3), "1 of 2 replica(s) updated"),
        (lambda d: d["status"].update(replicas=3), "1 old replica(s) still running"),
        (lambda d: d["status"].update(availableReplicas=1, readyReplicas=1), "1 ready and 1 available of 2"),
        (
            lambda d: d["status"]["conditions"].append(
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "quota"}
            ),
            "rollout stuck: quota",
        ),
    ],
)
def test_a_deployment_not_rolled_out_fails_and_skips_its_pods(config: StackConfig, change: Any, reason: str) -> None:
    runner = FakeRunner()
    report = verify_stack(config, _api(chat=change), runner)
    rollout = next(c for c in report.checks if c.subject == "chat" and c.name == "deployment rolled out")
    assert rollout.status == "failed" and reason in rollout.message
    assert next(c for c in report.checks if c.subject == "chat" and c.name == "runtime checks").status == "skipped"
    assert [p for p, _ in runner.pods] == ["micro-7f-abcde"] and runner.smoked == ["micro"]
    assert not report.ok


def test_missing_deployment_and_no_ready_pods(config: StackConfig) -> None:
    api = _api()
    del api.deployments[("slm-micro", "micro")]
    pods = copy.deepcopy(api.pods["slm-chat"])
    for pod in pods.items:
        pod.status.conditions[0].status = "False"
    api.pods["slm-chat"] = pods
    report = verify_stack(config, api, FakeRunner())
    messages = {(c.subject, c.name): (c.status, c.message) for c in report.checks}
    assert messages[("micro", "deployment rolled out")] == ("failed", "Deployment slm-micro/micro not found")
    assert messages[("chat", "ready pods")][0] == "failed"


def test_a_failing_runtime_check_fails_the_report(config: StackConfig) -> None:
    report = verify_stack(config, _api(), FakeRunner(fail="chat-6c9f7d8b5-x2x9q"))
    assert [c.subject for c in report.failed] == ["chat/chat-6c9f7d8b5-x2x9q"]


def test_scaled_to_zero_is_skipped(config: StackConfig) -> None:
    def zero(data: dict[str, Any]) -> None:
        data["spec"]["replicas"] = 0
        data["status"].update(replicas=0, updatedReplicas=0, readyReplicas=0, availableReplicas=0)

    report = verify_stack(config, _api(chat=zero), FakeRunner())
    assert ("chat", "runtime checks", "skipped") in [(c.subject, c.name, c.status) for c in report.checks]
    assert report.ok


def test_rollout_status_of_a_healthy_deployment() -> None:
    ok, message = rollout_status(_recorded("deployment-chat.json", "V1Deployment"))
    assert ok and message.startswith("2 replica(s) updated, ready and available")


def test_reports(config: StackConfig) -> None:
    report = verify_stack(config, _api(), FakeRunner(fail="micro-7f-abcde"), "verify")
    text = render_text(report)
    assert "6 passed, 1 failed, 0 skipped" in text and "micro/micro-7f-abcde" in text
    data = json.loads(render_json(report))
    assert data["ok"] is False and len(data["checks"]) == 7
    root = ET.fromstring(render_junit(report).split("?>", 1)[1])
    assert root.get("tests") == "7" and root.get("failures") == "1"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["micro/micro-7f-abcde"].get("failures") == "1"


def test_verify_command_without_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.verify.yaml").write_text(STACK)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    assert verify_command(tmp_path, "verify", None, "text", None) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot use the kubeconfig") and err.count("\n") == 1
    assert verify_command(tmp_path, "missing", None, "text", None) == 2
    assert verify_command(tmp_path, "verify", None, "yaml", None) == 2


def test_verify_command_end_to_end_with_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import infra.verify.runner
    import infra.verify.verify as verify

    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.verify.yaml").write_text(STACK)
    monkeypatch.setattr(verify, "KubernetesApi", lambda context: _api())
    monkeypatch.setattr(infra.verify.runner, "KubectlRunner", lambda context: FakeRunner())
    junit = tmp_path / "out" / "verify.xml"
    assert verify_command(tmp_path, "verify", "aks-staging", "json", junit) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert ET.parse(junit).getroot().get("tests") == "7"
