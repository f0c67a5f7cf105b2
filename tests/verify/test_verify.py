"""verify orchestration against recorded Kubernetes API responses (the client's own models), no network."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config.loader import load_stack_file
from infra.config.stack import StackConfig
from infra.verify.expectations import Expectation, expectations_for
from infra.verify.report import Check, render_json, render_junit, render_text
from infra.verify.runner import suite_check_names
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
    context = "fake"
    server = "https://fake.example"

    def __init__(
        self,
        deployments: dict[tuple[str, str], Any],
        pods: dict[str, Any],
        services: dict[tuple[str, str], Any],
        endpoint_slices: dict[str, Any],
        network_policies: dict[str, Any],
        nodes: dict[str, Any],
    ) -> None:
        self.deployments = deployments
        self.pods = pods
        self.services = services
        self.endpoint_slices = endpoint_slices
        self.network_policies = network_policies
        self.nodes = nodes
        self.selectors: list[tuple[str, str]] = []
        self.nodes_read: list[str] = []

    def read_deployment(self, namespace: str, name: str) -> Any | None:
        return self.deployments.get((namespace, name))

    def list_pods(self, namespace: str, label_selector: str) -> Any:
        self.selectors.append((namespace, label_selector))
        return self.pods[namespace]

    def read_service(self, namespace: str, name: str) -> Any | None:
        return self.services.get((namespace, name))

    def list_endpoint_slices(self, namespace: str, label_selector: str) -> Any:
        assert label_selector == f"kubernetes.io/service-name={namespace.removeprefix('slm-')}"
        return self.endpoint_slices[namespace]

    def list_network_policies(self, namespace: str) -> Any:
        return self.network_policies[namespace]

    def read_node(self, name: str) -> Any | None:
        self.nodes_read.append(name)
        return self.nodes.get(name)


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
    data["items"][0]["spec"]["nodeName"] = "aks-cpu-29301234-vmss000000"


def _micro_service(data: dict[str, Any]) -> None:
    data["metadata"].update(name="micro", namespace="slm-micro")
    data["spec"]["ports"][0]["port"] = 11434


def _micro_endpoints(data: dict[str, Any]) -> None:
    endpoint_slice = data["items"][0]
    endpoint_slice["metadata"].update(name="micro-x7k2p", namespace="slm-micro")
    endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"] = "micro"
    endpoint_slice["endpoints"] = endpoint_slice["endpoints"][:1]
    endpoint_slice["endpoints"][0]["targetRef"].update(name="micro-7f-abcde", namespace="slm-micro")
    endpoint_slice["ports"][0]["port"] = 11434


def _micro_policies(data: dict[str, Any]) -> None:
    for policy in data["items"]:
        policy["metadata"]["namespace"] = "slm-micro"


def _renamed_node(name: str) -> Callable[[dict[str, Any]], None]:
    def rename(data: dict[str, Any]) -> None:
        data["metadata"]["name"] = data["metadata"]["labels"]["kubernetes.io/hostname"] = name

    return rename


REAL_NODES = ("aks-gpu-38291047-vmss000000", "aks-gpu-38291047-vmss000001", "aks-cpu-29301234-vmss000000")


def _api(**changes: Any) -> FakeApi:
    chat = _recorded("deployment-chat.json", "V1Deployment", changes.get("chat"))
    micro = _recorded("deployment-chat.json", "V1Deployment", _micro_deployment)
    return FakeApi(
        {("slm-chat", "chat"): chat, ("slm-micro", "micro"): micro},
        {
            "slm-chat": _recorded("pods-chat.json", "V1PodList"),
            "slm-micro": _recorded("pods-chat.json", "V1PodList", _micro_pods),
        },
        {
            ("slm-chat", "chat"): _recorded("service-chat.json", "V1Service", changes.get("chat_service")),
            ("slm-micro", "micro"): _recorded("service-chat.json", "V1Service", _micro_service),
        },
        {
            "slm-chat": _recorded("endpointslices-chat.json", "V1EndpointSliceList", changes.get("chat_endpoints")),
            "slm-micro": _recorded("endpointslices-chat.json", "V1EndpointSliceList", _micro_endpoints),
        },
        {
            "slm-chat": _recorded("networkpolicies-chat.json", "V1NetworkPolicyList", changes.get("chat_policies")),
            "slm-micro": _recorded("networkpolicies-chat.json", "V1NetworkPolicyList", _micro_policies),
        },
        {name: _recorded("node-aks.json", "V1Node", _renamed_node(name)) for name in REAL_NODES},
    )


def _statuses(report: Any) -> dict[tuple[str, str], str]:
    return {(c.subject, c.name): c.status for c in report.checks}


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
    # Per model: rollout, default-deny, Service; per Ready pod the runtime checks; one smoke request.
    assert report.summary() == "11 passed, 0 failed, 0 skipped"
    statuses = _statuses(report)
    for model in ("chat", "micro"):
        assert statuses[(model, "default-deny NetworkPolicy present")] == "passed"
        assert statuses[(model, "service has ready endpoints")] == "passed"
    messages = {(c.subject, c.name): c.message for c in report.checks}
    assert messages[("chat", "service has ready endpoints")] == "port 8000, 2 ready endpoint(s)"
    assert messages[("micro", "service has ready endpoints")] == "port 11434, 1 ready endpoint(s)"
    assert messages[("chat", "default-deny NetworkPolicy present")].startswith("default-deny denies all")
    # Each node is read once, whatever the number of its pods.
    assert sorted(api.nodes_read) == sorted(REAL_NODES)


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
    assert "10 passed, 1 failed, 0 skipped" in text and "micro/micro-7f-abcde" in text
    data = json.loads(render_json(report))
    assert data["ok"] is False and len(data["checks"]) == 11
    root = ET.fromstring(render_junit(report).split("?>", 1)[1])
    assert root.get("tests") == "11" and root.get("failures") == "1"
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
    assert ET.parse(junit).getroot().get("tests") == "11"


FAKE_NODE_REASON = "not applicable: fake node (kwok) {node}, no container runs"


def _on_fake_nodes(api: FakeApi, *names: str) -> None:
    """Make ``names`` the nodes kwok fakes (the node recorded from the cluster tests' kwok, renamed)."""
    for name in names:
        api.nodes[name] = _recorded("node-kwok.json", "V1Node", _renamed_node(name))


def test_pods_on_fake_nodes_have_their_in_pod_checks_not_applicable(config: StackConfig) -> None:
    api, runner = _api(), FakeRunner()
    _on_fake_nodes(api, *REAL_NODES)
    report = verify_stack(config, api, runner, "verify")

    assert runner.pods == [] and runner.smoked == [], "nothing is exec'd into or requested on a fake node"
    assert report.ok, report.failed
    not_applicable = [c for c in report.checks if c.status == "not-applicable"]
    # Every check of the suite, for each of the three Ready pods, plus one smoke request per model.
    assert len(not_applicable) == 3 * len(suite_check_names()) + 2
    pod_checks = [c for c in not_applicable if c.subject == "chat/chat-6c9f7d8b5-a1b2c"]
    assert [c.name for c in pod_checks] == suite_check_names()
    assert {c.message for c in pod_checks} == {FAKE_NODE_REASON.format(node="aks-gpu-38291047-vmss000001")}
    smoke = next(c for c in not_applicable if c.subject == "micro" and c.name == "chat completion through the Service")
    assert smoke.message == "not applicable: every Ready pod is on a fake node (kwok), no container answers"
    # What needs no container still ran and passed.
    assert {c.name for c in report.checks if c.status == "passed"} == {
        "deployment rolled out",
        "default-deny NetworkPolicy present",
        "service has ready endpoints",
    }
    assert report.summary() == f"6 passed, 0 failed, 0 skipped, {len(not_applicable)} not applicable"

    data = json.loads(render_json(report))
    assert data["ok"] is True and {c["status"] for c in data["checks"]} == {"passed", "not-applicable"}
    root = ET.fromstring(render_junit(report).split("?>", 1)[1])
    assert root.get("failures") == "0"
    skipped = [case.find("skipped") for case in root.iter("testcase") if case.find("skipped") is not None]
    assert len(skipped) == len(not_applicable)
    assert all(s.get("message", "").startswith("not applicable: ") for s in skipped)
    assert "not applicable" in render_text(report)


def test_a_fake_node_among_real_ones(config: StackConfig) -> None:
    api, runner = _api(), FakeRunner()
    _on_fake_nodes(api, "aks-gpu-38291047-vmss000001")
    report = verify_stack(config, api, runner)

    assert [p for p, _ in runner.pods] == ["chat-6c9f7d8b5-x2x9q", "micro-7f-abcde"]
    # A real pod is left behind the Service: the smoke request goes through it as usual.
    assert runner.smoked == ["chat", "micro"]
    assert {c.subject for c in report.checks if c.status == "not-applicable"} == {"chat/chat-6c9f7d8b5-a1b2c"}
    assert report.ok


def test_a_node_that_cannot_be_read_counts_as_real(config: StackConfig) -> None:
    api, runner = _api(), FakeRunner()
    api.nodes.clear()  # KubernetesApi.read_node answers None on 403 (no ClusterRole) and 404
    report = verify_stack(config, api, runner)
    assert len(runner.pods) == 3 and runner.smoked == ["chat", "micro"]
    assert not [c for c in report.checks if c.status == "not-applicable"]


def _without_default_deny(data: dict[str, Any]) -> None:
    data["items"] = [p for p in data["items"] if p["metadata"]["name"] != "default-deny"]


def _default_deny_with_a_rule(data: dict[str, Any]) -> None:
    deny = next(p for p in data["items"] if p["metadata"]["name"] == "default-deny")
    deny["spec"]["ingress"] = [{}]  # one empty rule admits everything


def _default_deny_ingress_only(data: dict[str, Any]) -> None:
    deny = next(p for p in data["items"] if p["metadata"]["name"] == "default-deny")
    deny["spec"]["policyTypes"] = ["Ingress"]


def _default_deny_of_some_pods(data: dict[str, Any]) -> None:
    deny = next(p for p in data["items"] if p["metadata"]["name"] == "default-deny")
    deny["spec"]["podSelector"] = {"matchLabels": {"app.kubernetes.io/name": "vllm"}}


@pytest.mark.parametrize(
    "change",
    [_without_default_deny, _default_deny_with_a_rule, _default_deny_ingress_only, _default_deny_of_some_pods],
    ids=["missing", "with-a-rule", "ingress-only", "some-pods-only"],
)
def test_a_namespace_without_default_deny_fails(config: StackConfig, change: Any) -> None:
    report = verify_stack(config, _api(chat_policies=change), FakeRunner())
    check = next(c for c in report.checks if c.subject == "chat" and c.name == "default-deny NetworkPolicy present")
    assert check.status == "failed" and "selects every pod for Ingress and Egress without rules" in check.message
    assert "allow-dns-egress" in check.message
    assert [c.name for c in report.failed] == ["default-deny NetworkPolicy present"]


def _not_ready(data: dict[str, Any]) -> None:
    for endpoint in data["items"][0]["endpoints"]:
        endpoint["conditions"]["ready"] = False


def _other_pods(data: dict[str, Any]) -> None:
    for endpoint in data["items"][0]["endpoints"]:
        endpoint["targetRef"]["name"] = "something-else-5d9f8-zzzzz"


def _other_port(data: dict[str, Any]) -> None:
    data["spec"]["ports"][0]["port"] = 80


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"chat_endpoints": _not_ready}, "Service slm-chat/chat has no ready endpoint"),
        ({"chat_endpoints": lambda d: d.update(items=[])}, "Service slm-chat/chat has no ready endpoint"),
        (
            {"chat_endpoints": _other_pods},
            "none of the Deployment's Ready pods is an endpoint of Service slm-chat/chat",
        ),
        ({"chat_service": _other_port}, "Service slm-chat/chat does not expose the API port 8000 ([80])"),
    ],
    ids=["endpoints-not-ready", "no-endpoint-slice", "selects-other-pods", "other-port"],
)
def test_service_problems_fail(config: StackConfig, changes: dict[str, Any], reason: str) -> None:
    report = verify_stack(config, _api(**changes), FakeRunner())
    check = next(c for c in report.checks if c.subject == "chat" and c.name == "service has ready endpoints")
    assert check.status == "failed" and check.message.startswith(reason), check.message
    assert not report.ok


def test_a_missing_service_fails(config: StackConfig) -> None:
    api = _api()
    del api.services[("slm-chat", "chat")]
    report = verify_stack(config, api, FakeRunner())
    check = next(c for c in report.checks if c.subject == "chat" and c.name == "service has ready endpoints")
    assert (check.status, check.message) == ("failed", "Service slm-chat/chat not found")
