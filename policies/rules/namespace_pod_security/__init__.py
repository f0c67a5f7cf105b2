"""SLM-K8S-018: namespaces enforce, audit and warn Pod Security Standards restricted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import NAMESPACE, get, labels_of
from ...lib.rule import NSA, PSS, Rule

MODES = ("enforce", "audit", "warn")


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    labels = labels_of(get(args.props, "metadata", default={}))
    for mode in MODES:
        key = f"pod-security.kubernetes.io/{mode}"
        if labels.get(key) != "restricted":
            shown = "missing" if key not in labels else f"'{labels[key]}'"
            yield f"label {key} is {shown}; it must be 'restricted'"


RULE = Rule(
    id="SLM-K8S-018",
    name="namespace-pod-security",
    title="Namespaces must enforce, audit and warn Pod Security Standards restricted",
    severity="high",
    rationale=(
        "Pod Security Admission in the cluster is the last line of defence for pods created outside this program."
    ),
    remediation="Label the namespace pod-security.kubernetes.io/enforce, audit and warn = restricted.",
    controls={PSS: ("Pod Security Admission labels",), NSA: ("Pod security enhancements",)},
    resource_types=frozenset({NAMESPACE}),
    check=check,
)
