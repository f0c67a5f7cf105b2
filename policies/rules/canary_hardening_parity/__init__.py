"""SLM-K8S-031 (stack): a canary revision keeps every hardening setting of its stable revision.

A canary rollout (``models[].versions``, docs/canary.md) runs two Deployments of one model, told apart by the
``slm-deploy.io/track`` label (``stable``, ``canary``). The canary takes real requests, prompts included, so it must
be exactly as hardened as the revision it may replace: the same pod and container security contexts, service
account and token mount, and no host namespace the stable revision does not use. A canary that "temporarily" runs as
root or with a writable root file system is the change a reviewer would refuse; the per-field rules judge each
Deployment alone and may be waived for one, this rule catches the drift between the two.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.canary import TRACK_LABEL as TRACK
from ...lib.k8s import (
    WORKLOAD_TYPES,
    get,
    is_list,
    is_map,
    items,
    labels_of,
    namespace_of,
    pod_template,
    security_contexts,
)
from ...lib.rule import NSA, PSS, SLM, Rule

INSTANCE = "app.kubernetes.io/instance"
#: Pod spec fields that weaken isolation when they differ.
POD_FIELDS = ("serviceAccountName", "automountServiceAccountToken", "hostNetwork", "hostPID", "hostIPC", "hostUsers")


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if is_map(value):
        for key in value:
            _flatten(f"{prefix}.{key}", value[key], into)
    elif is_list(value):
        into[prefix] = sorted(str(item) for item in items(value))
    else:
        into[prefix] = value


def _hardening(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Every hardening field of a pod spec, by path (``containers[vllm].securityContext.runAsNonRoot``)."""
    found: dict[str, Any] = {field: get(spec, field) for field in POD_FIELDS}
    for label, context in security_contexts(spec):
        _flatten(f"{label}.securityContext", context, found)
    return found


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    tracks: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in args.resources:
        template = pod_template(resource.resource_type, resource.props)
        if template is None:
            continue
        labels = labels_of(template.metadata)
        if labels.get(TRACK) in ("stable", "canary") and INSTANCE in labels:
            key = (namespace_of(resource.props), labels[INSTANCE])
            tracks.setdefault(key, {})[labels[TRACK]] = (resource, template.spec)
    pairs = [(key, found) for key, found in tracks.items() if {"stable", "canary"} <= found.keys()]
    if not pairs:
        args.not_applicable("the stack has no canary rollout")
    for (namespace, model), found in pairs:
        (stable, stable_spec), (canary, canary_spec) = found["stable"], found["canary"]
        before, after = _hardening(stable_spec), _hardening(canary_spec)
        stable_name = get(stable.props, "metadata", "name", default=stable.name)
        canary_name = get(canary.props, "metadata", "name", default=canary.name)
        for field in sorted(before.keys() | after.keys()):
            if before.get(field) != after.get(field):
                yield (
                    canary.urn,
                    f"canary {canary_name} of model {model} in {namespace} differs from stable {stable_name} in "
                    f"{field}: {before.get(field)!r} → {after.get(field)!r}",
                )


RULE = Rule(
    id="SLM-K8S-031",
    name="canary-hardening-parity",
    title="A canary revision must be as hardened as its stable revision",
    severity="high",
    rationale="The canary serves real requests and may become the stable revision by a weight change: a canary that "
    "drops a security setting ships the weakening to production through a rollout nobody reviews as a security "
    "change.",
    remediation="Give the canary only what versions allows (image, modelId, replicas, engine flags): every hardening "
    "setting is the model's, for both revisions. Change hardening for the model, reviewed as such.",
    controls={
        SLM: ("A rollout changes what is served, never how it is isolated",),
        PSS: (
            "baseline: Host Namespaces",
            "baseline: Privileged Containers",
            "baseline: Capabilities",
            "baseline: Seccomp",
            "restricted: Running as Non-root",
        ),
        NSA: ("Pod security: non-root containers and rootless container engines",),
    },
    kind="stack",
    resource_types=WORKLOAD_TYPES,
    check=check,
)
