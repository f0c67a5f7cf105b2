"""``slm-deploy verify``: is what the stack declares running, hardened, and answering?

Per model: the Deployment rolled out and Ready (``observedGeneration``, ``updatedReplicas``,
``readyReplicas``, ``availableReplicas`` all caught up with the spec); then, in each Ready pod, the
testinfra suite (non-root UID, read-only root filesystem, no new privileges, no capabilities, only the
expected ports listening, model files in place); finally one chat completion through the Service.

Exit status of :func:`verify_command`: ``0`` everything passed, ``1`` a check failed, ``2`` bad input
or no access to the cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from infra.verify.expectations import Expectation, expectations_for
from infra.verify.report import Check, VerifyReport

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


class KubeApi(Protocol):
    """The two reads verify needs (the real one wraps the ``kubernetes`` client)."""

    def read_deployment(self, namespace: str, name: str) -> Any | None:
        """A ``V1Deployment``, or ``None`` when it does not exist."""

    def list_pods(self, namespace: str, label_selector: str) -> Any:
        """A ``V1PodList``."""


class Runner(Protocol):
    def runtime_checks(self, pod: str, expectation: Expectation) -> list[Check]: ...

    def smoke(self, expectation: Expectation) -> Check: ...


class KubernetesApi:
    """:class:`KubeApi` on the official client, from the kubeconfig (``context`` or the current one)."""

    def __init__(self, context: str | None = None) -> None:
        from kubernetes import client, config

        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        self._apps = client.AppsV1Api()
        self._core = client.CoreV1Api()

    def read_deployment(self, namespace: str, name: str) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._apps.read_namespaced_deployment(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list_pods(self, namespace: str, label_selector: str) -> Any:
        return self._core.list_namespaced_pod(namespace, label_selector=label_selector)


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


def verify_stack(config: StackConfig, kube_api: KubeApi, runner: Runner, stack: str = "") -> VerifyReport:
    """Verify every model of ``config`` on the cluster behind ``kube_api``."""
    report = VerifyReport(stack=stack)
    for expectation in expectations_for(config):
        subject = expectation.model
        deployment = kube_api.read_deployment(expectation.namespace, expectation.deployment)
        if deployment is None:
            report.checks.append(
                Check(subject, "deployment rolled out", "failed",
                      f"Deployment {expectation.namespace}/{expectation.deployment} not found")
            )  # fmt: skip
            continue
        rolled_out, why = rollout_status(deployment)
        report.checks.append(Check(subject, "deployment rolled out", "passed" if rolled_out else "failed", why))
        if not rolled_out:
            report.checks.append(Check(subject, "runtime checks", "skipped", "the deployment is not rolled out"))
            continue
        if (deployment.spec.replicas if deployment.spec.replicas is not None else 1) == 0:
            report.checks.append(Check(subject, "runtime checks", "skipped", "scaled to zero replicas"))
            continue
        pods = [p for p in kube_api.list_pods(expectation.namespace, _selector(deployment)).items if _ready(p)]
        if not pods:
            report.checks.append(Check(subject, "ready pods", "failed", "no Ready pod matches the Deployment"))
            continue
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            report.checks.extend(runner.runtime_checks(pod.metadata.name, expectation))
        report.checks.append(runner.smoke(expectation))
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
    try:
        api = KubernetesApi(kubeconfig_context)
    except Exception as error:  # the client raises ConfigException, FileNotFoundError, TypeError …
        where = f"context {kubeconfig_context!r}" if kubeconfig_context else "the current context"
        print(f"error: cannot use the kubeconfig ({where}): {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    try:
        report = verify_stack(config, api, KubectlRunner(kubeconfig_context), stack)
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
