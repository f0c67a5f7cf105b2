"""The alert of a model's endpoint picker (models routed through an InferencePool, docs/inference-pool.md).

The gateway asks the picker for a pod on every request of the model. With ``failureMode: FailClose`` (the default)
a picker without an available replica means no request reaches the model at all: critical. With ``FailOpen`` the
gateway sends requests to any pod of the pool, without cache or queue awareness: a warning. One replica runs at a
time (``Recreate``), so a short gap during its own rollout is expected: the alert waits 5 minutes.
"""

from __future__ import annotations

from typing import Any

from infra.monitoring.model import MonitoredModel, quote

ALERT = "SlmEndpointPickerUnavailable"
FOR = "5m"


def picker_group_name(model: MonitoredModel) -> str:
    return f"slm-deploy.{model.namespace}.{model.name}.endpoint-picker"


def picker_rule_group(model: MonitoredModel, runbook_base_url: str) -> dict[str, Any] | None:
    """The picker's alert group, or ``None`` for a model routed through its Service."""
    if model.endpoint_picker is None:
        return None
    deployment = f"{model.name}-epp"
    selector = "{namespace=%s,deployment=%s}" % (quote(model.namespace), quote(deployment))  # noqa: UP031
    closed = model.endpoint_picker == "FailClose"
    effect = (
        "the gateway refuses every request of the model (failureMode FailClose)"
        if closed
        else "the gateway sends the model's requests to any pod, without cache or queue awareness (FailOpen)"
    )
    return {
        "name": picker_group_name(model),
        "rules": [
            {
                "alert": ALERT,
                "expr": f"max by (namespace, deployment) (kube_deployment_status_replicas_available{selector}) < 1",
                "for": FOR,
                "labels": {
                    "severity": "critical" if closed else "warning",
                    "model": model.name,
                    "engine": model.engine,
                },
                "annotations": {
                    "summary": f"The endpoint picker of model {model.name} in {model.namespace} is unavailable",
                    "description": f"Deployment {deployment} in {model.namespace} has had no available replica for "
                    f"{FOR}: {effect}.",
                    "runbook_url": f"{runbook_base_url}#{ALERT.lower()}",
                },
            }
        ],
    }
