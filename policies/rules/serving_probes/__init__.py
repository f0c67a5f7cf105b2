"""SLM-K8S-012: startup, readiness and liveness probes on serving containers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, items, pod_template
from ...lib.rule import NSA, SLM, Rule

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    serving = [c for c in containers(pod.spec, ("containers",)) if items(get(c.body, "ports"))]
    if not serving:
        args.not_applicable("no container declares a port")
    for c in serving:
        missing = [p for p in PROBES if get(c.body, p) is None]
        if missing:
            yield f"{c.label} serves on a port but has no {', '.join(missing)}"


RULE = Rule(
    id="SLM-K8S-012",
    name="serving-probes",
    title="Serving containers must have startup, readiness and liveness probes",
    severity="medium",
    rationale=(
        "Model servers take minutes to load weights: without a startup probe they are killed or sent traffic too early."
    ),
    remediation="Add startupProbe, readinessProbe and livenessProbe (for vLLM: HTTP GET /health on port 8000).",
    controls={SLM: ("Availability: health checking",), NSA: ("Upgrading and application security practices",)},
    checkov=("CKV_K8S_8", "CKV_K8S_9"),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
