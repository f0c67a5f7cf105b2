"""SLM-GOV-004: the labels a stack adds (``slm-deploy:labels``, ``models[].labels``) use only keys the pack
admits.

A positive model (:mod:`policies.lib.label_keys`): keys Kubernetes and AKS own are refused everywhere
(``control-plane`` on a namespace makes AKS's admissions enforcer skip the customer's webhooks for it), and
beyond those only keys matching ``allowedKeys`` pass: by default any key without a prefix; a prefixed key
needs a level that lists it (``"allowedKeys": ["*", "example.com/*"]`` in ``policies/config/<level>.json``).
Judged on each Namespace that carries the key; a waiver names the key as its subject.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib import stack_config
from ...lib.finding import Finding
from ...lib.k8s import NAMESPACE, get, is_map, items, labels_of
from ...lib.label_keys import DEFAULT_ALLOWED_KEYS, admitted, refused
from ...lib.rule import AKS, SLM, Rule


def stack_label_keys() -> set[str]:
    """Label keys the stack file sets, on every object or on one model's."""
    keys: set[str] = set()
    labels = stack_config.value("labels", default={})
    if is_map(labels):
        keys.update(map(str, labels))
    for model in items(stack_config.value("models", default=[])):
        if is_map(model) and is_map(model.get("labels")):
            keys.update(map(str, model["labels"]))
    return keys


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    present = set(labels_of(get(args.props, "metadata", default={})))
    allowed = tuple(str(p) for p in config.get("allowedKeys", DEFAULT_ALLOWED_KEYS))
    for key in sorted(stack_label_keys() & present):
        if admitted(key, allowed):
            continue
        why = refused(key) or f"it matches none of allowedKeys ({', '.join(allowed)})"
        yield Finding(f"the stack sets label {key} on this namespace: {why}", subject=key)


RULE = Rule(
    id="SLM-GOV-004",
    name="stack-label-keys",
    title="Stack labels use only the keys the pack admits",
    severity="high",
    rationale=(
        "Some label keys change what the platform does: `control-plane` or `admissions.enforcer/disabled` make "
        "AKS skip the customer's admission webhooks for a namespace, `pod-security.kubernetes.io/*` changes its "
        "Pod Security level. A stack file may label objects for cost and ownership, not switch controls off."
    ),
    remediation=(
        "Remove the label, or (for an organisation's own prefix) add it to allowedKeys in "
        "policies/config/<level>.json in a reviewed change."
    ),
    controls={SLM: ("Governance: a change cannot weaken its own gate",), AKS: ("PA-7: least privilege",)},
    resource_types=frozenset({NAMESPACE}),
    config={
        "allowedKeys": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": list(DEFAULT_ALLOWED_KEYS),
            "description": "Label keys stacks may set (globs; `*` stays within the prefix or the name).",
        }
    },
    check=check,
    subject="label key",
)
