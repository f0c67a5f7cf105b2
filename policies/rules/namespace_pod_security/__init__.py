"""SLM-K8S-018: namespaces enforce, audit and warn Pod Security Standards restricted, at a current version.

A ``<mode>-version`` label pins the admission to an older definition of the level (``v1.22`` lets
through what later versions refuse): it must be ``latest`` or the cluster's own minor version
(the stack's ``kubernetesVersion``); unset means ``latest``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib import stack_config
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
    cluster = stack_config.value("kubernetesVersion")
    allowed = {"latest", *([f"v{cluster}"] if cluster else [])}
    for mode in MODES:
        key = f"pod-security.kubernetes.io/{mode}-version"
        if key in labels and labels[key] not in allowed:
            yield (
                f"label {key} is '{labels[key]}': it pins the admission to an old definition of the level; "
                f"use {' or '.join(sorted(allowed))}"
            )


RULE = Rule(
    id="SLM-K8S-018",
    name="namespace-pod-security",
    title="Namespaces must enforce, audit and warn Pod Security Standards restricted",
    severity="high",
    rationale=(
        "Pod Security Admission in the cluster is the last line of defence for pods created outside this program."
    ),
    remediation="Label the namespace pod-security.kubernetes.io/enforce, audit and warn = restricted, and leave "
    "their -version labels unset or latest.",
    controls={PSS: ("Pod Security Admission labels",), NSA: ("Pod security enhancements",)},
    resource_types=frozenset({NAMESPACE}),
    check=check,
)
