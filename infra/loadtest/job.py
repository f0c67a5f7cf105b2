"""The benchmark as an in-cluster Kubernetes Job, hardened like the model servers.

:func:`bench_job_spec` returns a plain ``batch/v1`` Job manifest (camelCase, as ``kubectl`` and the
Pulumi engine see it). The pod and container security contexts are the model servers' own
(``infra.components.model_server.pod_security_context`` / ``container_security_context`` of the
model's hardening), converted to plain dictionaries, so the Job can never be weaker than the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.config.model import ModelConfig
    from infra.config.stack import StackConfig


def _plain(value: Any) -> Any:
    """Pulumi input types (``…Args``) → dictionaries with the engine's (camelCase) names, recursively."""
    from pulumi import _types

    if _types.is_input_type(type(value)):
        return {k: _plain(v) for k, v in _types.input_type_to_dict(value).items() if v is not None}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def bench_job_spec(
    model: ModelConfig,
    config: StackConfig,
    image: str,
    *,
    concurrency: str = "1,4,16",
    requests: int = 64,
    max_tokens: int = 128,
    namespace: str | None = None,
    name: str | None = None,
    deadline_seconds: int = 1800,
) -> dict[str, Any]:
    """A Job running ``slm-deploy bench --format json`` against ``model``'s Service.

    ``image`` must contain slm-deploy (its ``slm-deploy`` entry point). The result is the Job's log.
    ``namespace`` defaults to the model's; the model's NetworkPolicies must admit it (its namespace in
    ``network.ingressFromNamespaces``, or run it where they do).
    """
    from infra.components.pod_security import container_security_context, pod_security_context
    from infra.engines import engine_for

    engine = engine_for(model, config)
    job_namespace = namespace or model.k8s_namespace
    job_name = name or f"{model.name}-bench"
    url = f"http://{model.name}.{model.k8s_namespace}.svc.cluster.local:{engine.port}{engine.api_base_path}"
    labels = {
        "app.kubernetes.io/name": "slm-deploy-bench",
        "app.kubernetes.io/instance": job_name,
        "app.kubernetes.io/component": "bench",
        "app.kubernetes.io/part-of": "slm-deploy",
        **config.labels,
    }
    container = {
        "name": "bench",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["slm-deploy", "bench"],
        "args": [
            "--url",
            url,
            "--model",
            model.api_model_name,
            "--concurrency",
            concurrency,
            "--requests",
            str(requests),
            "--max-tokens",
            str(max_tokens),
            "--format",
            "json",
        ],
        # The root filesystem is read-only: HOME and TMPDIR point at the one writable volume.
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "TMPDIR", "value": "/tmp"}],
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": _plain(container_security_context(model.hardening)),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name, "namespace": job_namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": 86_400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": _plain(pod_security_context(model.hardening)),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }
