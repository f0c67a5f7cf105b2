"""SLM-NET-006 (stack): an HTTPRoute rule that splits a model's requests between its revisions states every weight,
and the weights are percent adding up to 100.

A canary rollout (docs/canary.md) routes a model's requests to the Services of its two revisions
(``slm-deploy.io/version`` in their selectors) by ``backendRefs[].weight``. Gateway API reads weights as proportions
and gives a backend without one the weight 1 (https://gateway-api.sigs.k8s.io/guides/traffic-splitting): a reference
edited by hand, or a patch that drops a weight, silently turns 90/10 into 90/1, or 0/10 into 1/10. slm-deploy states
each weight and validates that they add up to 100, so the split reads as percent; this rule holds the rendered route
to the same, and refuses a rule that mixes the revisions of two models (one model's prompts to another).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.canary import VERSION_LABEL
from ...lib.k8s import get, items, namespace_of
from ...lib.rule import SLM, Rule

ROUTE_TYPES = frozenset({"kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"})
SERVICE_TYPES = frozenset({"kubernetes:core/v1:Service"})
INSTANCE = "app.kubernetes.io/instance"
TOTAL = 100


def _revisions(resources: Any) -> dict[tuple[str, str], str]:
    """(namespace, Service name) → model, for the Services that select one revision of a model."""
    found: dict[tuple[str, str], str] = {}
    for resource in resources:
        if resource.resource_type not in SERVICE_TYPES:
            continue
        selector = get(resource.props, "spec", "selector", default={})
        if VERSION_LABEL in selector:
            name = str(get(resource.props, "metadata", "name", default=resource.name))
            found[(namespace_of(resource.props), name)] = str(selector.get(INSTANCE, ""))
    return found


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    revisions = _revisions(args.resources)
    if not revisions:
        args.not_applicable("the stack has no Service of a model's revision")
    for route in args.resources:
        if route.resource_type not in ROUTE_TYPES:
            continue
        namespace = namespace_of(route.props)
        route_name = get(route.props, "metadata", "name", default=route.name)
        for index, rule in enumerate(items(get(route.props, "spec", "rules"))):
            refs = [ref for ref in items(get(rule, "backendRefs")) if get(ref, "kind", default="Service") == "Service"]
            models = {
                revisions[key]
                for ref in refs
                if (key := (str(get(ref, "namespace", default=namespace)), str(get(ref, "name")))) in revisions
            }
            if not models:
                continue
            where = f"rule {index} of HTTPRoute {route_name}"
            if len(models) > 1:
                yield (
                    route.urn,
                    f"{where} splits between the revisions of more than one model: {', '.join(sorted(models))}",
                )
            unweighted = [str(get(ref, "name")) for ref in refs if get(ref, "weight") is None]
            if unweighted:
                yield (
                    route.urn,
                    f"{where} gives no weight to {', '.join(unweighted)} (Gateway API then gives it 1): state each",
                )
            total = sum(int(get(ref, "weight", default=0)) for ref in refs)
            if total != TOTAL:
                yield (route.urn, f"{where} has weights adding up to {total}, not {TOTAL} (percent of the requests)")


RULE = Rule(
    id="SLM-NET-006",
    name="canary-route-weights",
    title="A canary route states every weight, in percent adding up to 100",
    severity="medium",
    rationale="A missing weight defaults to 1 and weights are proportions: a hand edit silently changes how much "
    "real traffic the canary takes, which is the one number a rollout is reviewed on.",
    remediation="Set the split with models[].versions (stable and canary weights adding up to 100) and let slm-deploy "
    "render the route; do not patch the HTTPRoute.",
    controls={
        SLM: ("Traffic reaches only the model it is addressed to", "A rollout is watched against what it replaces")
    },
    kind="stack",
    resource_types=ROUTE_TYPES | SERVICE_TYPES,
    check=check,
)
