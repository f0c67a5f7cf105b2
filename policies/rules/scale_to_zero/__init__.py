"""SLM-AVL-005 (stack): scaling to zero only where the level allows it, and only with something that holds requests.

A ScaledObject with ``minReplicaCount: 0`` (KEDA's default when the field is absent) leaves a model without a pod
when idle. Three findings (docs/scale-to-zero.md):

- the level does not allow scaling to zero (``allowScaleToZero``, false unless the level says otherwise: the
  first request after idle waits for a pod to be scheduled and a model to load, minutes for a GPU model); a
  reviewed exception is a waiver;
- nothing holds the first request while a replica starts: no ``external-push`` trigger naming an HTTPScaledObject
  of the KEDA HTTP add-on, whose interceptor holds requests; the model's own queue metric has no pod to come from
  at zero, so it never wakes, and requests to its Service find no endpoint and are refused;
- two scalers for one Deployment: an HTTPScaledObject without ``httpscaledobject.keda.sh/skip-scaledobject-creation:
  "true"`` makes a ScaledObject of its own, beside the one the stack declares (KEDA admits one per workload).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.k8s import annotations_of, get, is_map, items, namespace_of
from ...lib.rule import SLM, Rule

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
HTTP_SCALED_OBJECT = "kubernetes:http.keda.sh/v1alpha1:HTTPScaledObject"
SKIP_ANNOTATION = "httpscaledobject.keda.sh/skip-scaledobject-creation"


def _interceptor_trigger(spec: Mapping[str, Any]) -> str | None:
    """The HTTPScaledObject an ``external-push`` trigger counts requests of, if any."""
    for trigger in items(get(spec, "triggers")):
        if is_map(trigger) and get(trigger, "type") == "external-push" and get(trigger, "metadata", "httpScaledObject"):
            return str(get(trigger, "metadata", "httpScaledObject"))
    return None


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    scaled = [r for r in args.resources if r.resource_type == SCALED_OBJECT]
    http = [r for r in args.resources if r.resource_type == HTTP_SCALED_OBJECT]
    if not scaled and not http:
        args.not_applicable("the stack has no ScaledObject")
    http_names = {(namespace_of(r.props), str(get(r.props, "metadata", "name", default=""))) for r in http}
    targets = {
        (namespace_of(r.props), str(get(r.props, "spec", "scaleTargetRef", "name", default=""))): r for r in scaled
    }
    for resource in scaled:
        spec = get(resource.props, "spec", default={})
        if int(float(get(spec, "minReplicaCount", default=0))) != 0:
            continue
        target = str(get(spec, "scaleTargetRef", "name", default=""))
        if not config["allowScaleToZero"]:
            yield (
                resource.urn,
                f"{resource.name} scales '{target}' to zero (minReplicaCount 0), which this level does not allow: the "
                "first request after idle waits for a pod to start and the model to load",
            )
        held = _interceptor_trigger(spec)
        if held is None or (namespace_of(resource.props), held) not in http_names:
            yield (
                resource.urn,
                f"{resource.name} scales '{target}' to zero, but no trigger counts the requests of an HTTPScaledObject "
                "of the stack (external-push, metadata httpScaledObject): nothing holds the first request after "
                "idle, which is refused",
            )
    for resource in http:
        target = str(get(resource.props, "spec", "scaleTargetRef", "name", default=""))
        owned = targets.get((namespace_of(resource.props), target))
        if owned is not None and annotations_of(resource.props).get(SKIP_ANNOTATION) != "true":
            yield (
                resource.urn,
                f"{resource.name} would create a ScaledObject for '{target}' beside {owned.name}: set the annotation "
                f'{SKIP_ANNOTATION}: "true" (one scaler per Deployment)',
            )


RULE = Rule(
    id="SLM-AVL-005",
    name="scale-to-zero",
    title="Models scale to zero only where the level allows it, behind the HTTP add-on's interceptor",
    severity="medium",
    rationale=(
        "A model at zero replicas answers its next request only after a pod is scheduled and the model loaded "
        "(minutes for a GPU model, longer when the node pool scales up too); without an interceptor holding the "
        "request it is refused outright."
    ),
    remediation=(
        "Keep minReplicaCount at 1 or more (autoscaling.minReplicas) where the level refuses scaling to zero, or "
        "waive it with a reason; where it is allowed, use autoscaling.scaleToZero (HTTPScaledObject with "
        "skip-scaledobject-creation, and its external-push trigger on the model's ScaledObject)."
    ),
    controls={SLM: ("Availability: redundancy", "Availability: cold starts")},
    kind="stack",
    resource_types=frozenset({SCALED_OBJECT, HTTP_SCALED_OBJECT}),
    config={
        "allowScaleToZero": {
            "type": "boolean",
            "default": False,
            "description": "Whether models may scale to zero at this level (dev: true).",
        }
    },
    check=check,
)
