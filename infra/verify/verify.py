"""``slm-deploy verify``: is what the stack declares running, hardened, and answering?

Per model: the Deployment rolled out and Ready (``observedGeneration``, ``updatedReplicas``,
``readyReplicas``, ``availableReplicas`` all caught up with the spec); the namespace's default-deny
NetworkPolicy in place; the Service exposing the API port with the Deployment's Ready pods as ready
endpoints; then, in each Ready pod, the testinfra suite (non-root UID, read-only root filesystem, no new
privileges, no capabilities, only the expected ports listening, model files in place); finally one chat
completion through the Service.

A pod on a fake node (one kwok manages: annotation ``kwok.x-k8s.io/node: fake``) runs no container: its
in-pod checks, and the chat completion when every Ready pod is on such a node, are reported
``not-applicable`` instead of being run.

Exit status of :func:`verify_command`: ``0`` everything applicable passed, ``1`` a check failed, ``2``
bad input or no access to the cluster.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from infra.verify.expectations import Expectation, expectations_for
from infra.verify.report import Check, VerifyReport

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


#: The annotation kwok puts on (and selects) the nodes it fakes; no container ever runs on them.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_FAKE = "fake"
SMOKE_CHECK = "chat completion through the Service"
SERVICE_CHECK = "service has ready endpoints"
NETWORK_POLICY_CHECK = "default-deny NetworkPolicy present"


class KubeApi(Protocol):
    """The reads verify needs (the real one wraps the ``kubernetes`` client)."""

    def read_deployment(self, namespace: str, name: str) -> Any | None:
        """A ``V1Deployment``, or ``None`` when it does not exist."""

    def list_pods(self, namespace: str, label_selector: str) -> Any:
        """A ``V1PodList``."""

    def read_service(self, namespace: str, name: str) -> Any | None:
        """A ``V1Service``, or ``None`` when it does not exist."""

    def list_endpoint_slices(self, namespace: str, label_selector: str) -> Any:
        """A ``V1EndpointSliceList``."""

    def list_network_policies(self, namespace: str) -> Any:
        """A ``V1NetworkPolicyList``."""

    def read_node(self, name: str) -> Any | None:
        """A ``V1Node``, or ``None`` when it does not exist or may not be read (nodes are cluster-scoped)."""


class Runner(Protocol):
    def runtime_checks(self, pod: str, expectation: Expectation) -> list[Check]: ...

    def smoke(self, expectation: Expectation) -> Check: ...


class KubernetesApi:
    """:class:`KubeApi` on the official client, from the kubeconfig (``context`` or the current one)."""

    def __init__(self, context: str | None = None) -> None:
        from kubernetes import client, config

        # $KUBECONFIG read now (the client reads it once, at import), as kubectl reads it: a list of files.
        files = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
        config.load_kube_config(config_file=files, context=context)  # type: ignore[no-untyped-call]
        _, active = config.list_kube_config_contexts(config_file=files)  # type: ignore[no-untyped-call]
        #: The context and API server this client talks to, said before the first check.
        self.context = context or str(active["name"])
        self.server = str(client.Configuration.get_default_copy().host)
        self._apps = client.AppsV1Api()
        self._core = client.CoreV1Api()
        self._discovery = client.DiscoveryV1Api()
        self._networking = client.NetworkingV1Api()

    @staticmethod
    def _read(read: Any, *args: str, missing: tuple[int, ...] = (404,)) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return read(*args)
        except ApiException as error:
            if error.status in missing:
                return None
            raise

    def read_deployment(self, namespace: str, name: str) -> Any | None:
        return self._read(self._apps.read_namespaced_deployment, name, namespace)

    def list_pods(self, namespace: str, label_selector: str) -> Any:
        return self._core.list_namespaced_pod(namespace, label_selector=label_selector)

    def read_service(self, namespace: str, name: str) -> Any | None:
        return self._read(self._core.read_namespaced_service, name, namespace)

    def list_endpoint_slices(self, namespace: str, label_selector: str) -> Any:
        return self._discovery.list_namespaced_endpoint_slice(namespace, label_selector=label_selector)

    def list_network_policies(self, namespace: str) -> Any:
        return self._networking.list_namespaced_network_policy(namespace)

    def read_node(self, name: str) -> Any | None:
        # A namespaced role cannot read nodes (403): the node is then taken for a real one.
        return self._read(self._core.read_node, name, missing=(403, 404))


def rollout_status(deployment: Any) -> tuple[bool, str]:
    """Whether a ``V1Deployment`` finished rolling out and every replica is Ready, and why not."""
    spec_replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    status = deployment.status
    generation = deployment.metadata.generation or 0
    observed = status.observed_generation or 0
    updated = status.updated_replicas or 0
    ready = status.ready_replicas or 0
    available = status.available_replicas or 0
    total = status.replicas or 0
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return False, f"rollout stuck: {condition.message or 'progress deadline exceeded'}"
    if observed < generation:
        return False, f"the controller has not seen generation {generation} yet (observed {observed})"
    if updated < spec_replicas:
        return False, f"{updated} of {spec_replicas} replica(s) updated"
    if total > updated:
        return False, f"{total - updated} old replica(s) still running"
    if ready < spec_replicas or available < spec_replicas:
        return False, f"{ready} ready and {available} available of {spec_replicas} replica(s)"
    return True, f"{spec_replicas} replica(s) updated, ready and available (generation {generation})"


def _ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _selector(deployment: Any) -> str:
    labels = deployment.spec.selector.match_labels or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def is_fake_node(node: Any | None) -> bool:
    """Whether kwok fakes this ``V1Node``: its pods are API objects only, no container runs for them."""
    if node is None:
        return False
    annotations = node.metadata.annotations or {}
    return bool(annotations.get(KWOK_NODE_ANNOTATION) == KWOK_FAKE)


def network_policy_check(expectation: Expectation, kube_api: KubeApi) -> Check:
    """The model's namespace holds a default-deny NetworkPolicy: every pod, Ingress and Egress, no rule.

    Presence only: whether the cluster's network plugin enforces NetworkPolicies is not visible here.
    """
    policies = kube_api.list_network_policies(expectation.namespace).items or []
    names = sorted(p.metadata.name for p in policies)
    for policy in policies:
        spec = policy.spec
        selector = spec.pod_selector
        every_pod = selector is None or not (selector.match_labels or selector.match_expressions)
        if every_pod and {"Ingress", "Egress"} <= set(spec.policy_types or []) and not spec.ingress and not spec.egress:
            return Check(
                expectation.model,
                NETWORK_POLICY_CHECK,
                "passed",
                f"{policy.metadata.name} denies all ingress and egress; NetworkPolicies: {', '.join(names)}",
            )
    return Check(
        expectation.model,
        NETWORK_POLICY_CHECK,
        "failed",
        f"no NetworkPolicy in {expectation.namespace} selects every pod for Ingress and Egress without rules "
        f"(NetworkPolicies: {', '.join(names) or 'none'})",
    )


def service_check(expectation: Expectation, kube_api: KubeApi, ready_pods: set[str] | None, replicas: int) -> Check:
    """The Service exists, exposes the API port, and routes to the Deployment's Ready pods.

    ``ready_pods`` None: the Deployment is missing, any ready endpoint will do.
    """
    subject, where = expectation.model, f"Service {expectation.namespace}/{expectation.service}"
    service = kube_api.read_service(expectation.namespace, expectation.service)
    if service is None:
        return Check(subject, SERVICE_CHECK, "failed", f"{where} not found")
    api_port = expectation.ports[0]
    ports = [p.port for p in service.spec.ports or []]
    if api_port not in ports:
        return Check(subject, SERVICE_CHECK, "failed", f"{where} does not expose the API port {api_port} ({ports})")
    if replicas == 0:
        return Check(subject, SERVICE_CHECK, "passed", f"port {api_port}; scaled to zero, no endpoint expected")
    slices = kube_api.list_endpoint_slices(
        expectation.namespace, f"kubernetes.io/service-name={expectation.service}"
    ).items
    endpoints = {
        endpoint.target_ref.name if endpoint.target_ref is not None else ",".join(endpoint.addresses or [])
        for endpoint_slice in slices or []
        for endpoint in endpoint_slice.endpoints or []
        # An unset ready condition means ready (discovery.k8s.io/v1 EndpointConditions).
        if endpoint.conditions is None or endpoint.conditions.ready is not False
    }
    if not endpoints:
        return Check(subject, SERVICE_CHECK, "failed", f"{where} has no ready endpoint")
    if ready_pods and not endpoints & ready_pods:
        return Check(
            subject,
            SERVICE_CHECK,
            "failed",
            f"none of the Deployment's Ready pods is an endpoint of {where} (does its selector match the pods?)",
        )
    return Check(subject, SERVICE_CHECK, "passed", f"port {api_port}, {len(endpoints)} ready endpoint(s)")


def _not_applicable_on_fake_node(pod: str, node: str, expectation: Expectation) -> list[Check]:
    from infra.verify.runner import suite_check_names

    reason = f"not applicable: fake node (kwok) {node}, no container runs"
    return [Check(f"{expectation.model}/{pod}", name, "not-applicable", reason) for name in suite_check_names()]


def verify_stack(config: StackConfig, kube_api: KubeApi, runner: Runner, stack: str = "") -> VerifyReport:
    """Verify every model of ``config`` on the cluster behind ``kube_api``."""
    report = VerifyReport(stack=stack)
    nodes: dict[str, bool] = {}

    def on_fake_node(pod: Any) -> bool:
        name = pod.spec.node_name
        if not name:
            return False
        if name not in nodes:
            nodes[name] = is_fake_node(kube_api.read_node(name))
        return nodes[name]

    for expectation in expectations_for(config):
        subject = expectation.model
        deployment = kube_api.read_deployment(expectation.namespace, expectation.deployment)
        if deployment is None:
            report.checks.append(
                Check(subject, "deployment rolled out", "failed",
                      f"Deployment {expectation.namespace}/{expectation.deployment} not found")
            )  # fmt: skip
            report.checks.append(network_policy_check(expectation, kube_api))
            report.checks.append(service_check(expectation, kube_api, None, 1))
            continue
        rolled_out, why = rollout_status(deployment)
        report.checks.append(Check(subject, "deployment rolled out", "passed" if rolled_out else "failed", why))
        report.checks.append(network_policy_check(expectation, kube_api))
        replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        pods = [p for p in kube_api.list_pods(expectation.namespace, _selector(deployment)).items if _ready(p)]
        report.checks.append(service_check(expectation, kube_api, {p.metadata.name for p in pods}, replicas))
        if not rolled_out:
            report.checks.append(Check(subject, "runtime checks", "skipped", "the deployment is not rolled out"))
            continue
        if replicas == 0:
            report.checks.append(Check(subject, "runtime checks", "skipped", "scaled to zero replicas"))
            continue
        if not pods:
            report.checks.append(Check(subject, "ready pods", "failed", "no Ready pod matches the Deployment"))
            continue
        real = 0
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            if on_fake_node(pod):
                report.checks.extend(_not_applicable_on_fake_node(pod.metadata.name, pod.spec.node_name, expectation))
            else:
                real += 1
                report.checks.extend(runner.runtime_checks(pod.metadata.name, expectation))
        if real:
            report.checks.append(runner.smoke(expectation))
        else:
            reason = "not applicable: every Ready pod is on a fake node (kwok), no container answers"
            report.checks.append(Check(subject, SMOKE_CHECK, "not-applicable", reason))
    return report


def verify_command(
    root: Path, stack: str, kubeconfig_context: str | None, output_format: str, junit_path: Path | None
) -> int:
    """The ``slm-deploy verify`` command: 0 all passed, 1 a check failed, 2 bad input / no cluster."""
    from infra.config.loader import StackConfigError
    from infra.engines import EngineNotAvailableError
    from infra.plan.stack import load_stack
    from infra.verify.report import render_json, render_junit, render_text
    from infra.verify.runner import KubectlRunner

    if output_format not in ("text", "json"):
        print(f"error: unknown format {output_format!r} (expected text or json)", file=sys.stderr)
        return 2
    try:
        _, config = load_stack(stack, root)
    except StackConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # The stack's own cluster unless --context says otherwise: never whatever context happens to be current.
    given = kubeconfig_context is not None
    kubeconfig_context = kubeconfig_context or config.cluster.context
    try:
        api = KubernetesApi(kubeconfig_context)
    except Exception as error:  # the client raises ConfigException, FileNotFoundError, TypeError …
        where = f"context {kubeconfig_context!r}" if kubeconfig_context else "the current context"
        print(f"error: cannot use the kubeconfig ({where}): {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    origin = "--context" if given else "the stack's cluster.context" if kubeconfig_context else "the current context"
    print(f"verify: cluster {api.server} (kubeconfig context {api.context!r}, from {origin})", file=sys.stderr)
    try:
        report = verify_stack(config, api, KubectlRunner(api.context), stack)
    except EngineNotAvailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # an API error (403, 5xx, connection refused) is no verdict
        print(f"error: cluster access failed: {' '.join(str(error).split())[:300]}", file=sys.stderr)
        return 2
    text = render_json(report) if output_format == "json" else render_text(report)
    sys.stdout.write(text)
    if junit_path is not None:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(render_junit(report), encoding="utf-8")
    return 0 if report.ok else 1
