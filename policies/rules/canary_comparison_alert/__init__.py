"""SLM-GOV-005 (stack): a canary rollout is watched: its model has the stable-versus-canary comparison alerts.

A canary revision (``slm-deploy.io/track: canary``, docs/canary.md) takes a share of real requests so that its
latency and failures can be compared with the stable revision's before it takes them all. Without the comparison
alerts (``SlmCanaryTimeToFirstTokenWorse``, ``SlmCanaryErrorRatioWorse``, labelled with the model's name, in a
PrometheusRule of the stack) nobody is told when the canary is worse: the weights get raised on a hunch. slm-deploy
renders them for engines that export the compared series (vLLM, the ONNX server) when the stack has monitoring.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.canary import COMPARISON_ALERTS, TRACK_LABEL
from ...lib.k8s import WORKLOAD_TYPES, get, items, labels_of, namespace_of, pod_template
from ...lib.rule import SLM, Rule

RULE_TYPES = frozenset({"kubernetes:monitoring.coreos.com/v1:PrometheusRule"})
INSTANCE = "app.kubernetes.io/instance"


def _alerts(resources: Any) -> set[tuple[str, str]]:
    """(alert, model label) of every alerting rule of the stack's PrometheusRules."""
    found: set[tuple[str, str]] = set()
    for resource in resources:
        if resource.resource_type not in RULE_TYPES:
            continue
        for group in items(get(resource.props, "spec", "groups")):
            for rule in items(get(group, "rules")):
                alert, model = get(rule, "alert"), get(rule, "labels", "model")
                if alert and model:
                    found.add((str(alert), str(model)))
    return found


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    canaries = []
    for resource in args.resources:
        template = pod_template(resource.resource_type, resource.props)
        if template is not None and labels_of(template.metadata).get(TRACK_LABEL) == "canary":
            canaries.append((resource, labels_of(template.metadata).get(INSTANCE, "")))
    if not canaries:
        args.not_applicable("the stack has no canary revision")
    alerts = _alerts(args.resources)
    for resource, model in canaries:
        missing = [alert for alert in COMPARISON_ALERTS if (alert, model) not in alerts]
        if missing:
            name = get(resource.props, "metadata", "name", default=resource.name)
            yield (
                resource.urn,
                f"canary {name} of model {model} in {namespace_of(resource.props)} has no comparison alert "
                f"{', '.join(missing)}",
            )


RULE = Rule(
    id="SLM-GOV-005",
    name="canary-comparison-alert",
    title="A canary revision must be compared with its stable revision by alerts",
    severity="medium",
    rationale="A canary exists to be compared: without an alert on its latency and failures against the stable "
    "revision, a worse canary keeps its share of real requests, or is promoted, unnoticed.",
    remediation="Keep monitoring on (mode kube-prometheus-stack or existing) and serve the canary with an engine that "
    "exports time to first token and finished requests (vLLM, the ONNX server); slm-deploy renders the alerts.",
    controls={SLM: ("A rollout is watched against what it replaces",)},
    kind="stack",
    resource_types=WORKLOAD_TYPES | RULE_TYPES,
    check=check,
)
