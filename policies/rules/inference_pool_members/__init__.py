"""SLM-NET-005 (stack): an InferencePool selects the pods of exactly one model server, nothing else.

The gateway sends every request routed to a pool to whichever pod of the pool its endpoint picker names. A
selector that is too broad (``app.kubernetes.io/part-of: slm-deploy``, or only the engine's name) pulls other
pods of the namespace into the pool: the picker itself, a second model's servers, a preparation Job. Requests
for one model then reach another model, or a pod that was never meant to take traffic. The rule matches each
pool's ``spec.selector`` against the pod templates of the workloads in the pool's namespace: it must match at
least one and every pod it matches must belong to one model server Deployment (component ``model-server``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.k8s import (
    MODEL_SERVER_COMPONENT,
    WORKLOAD_TYPES,
    get,
    labels_of,
    namespace_of,
    pod_template,
    selector_matches,
)
from ...lib.rule import NSA, SLM, Rule

POOL_TYPES = frozenset({"kubernetes:inference.networking.k8s.io/v1:InferencePool"})


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    pools = [r for r in args.resources if r.resource_type in POOL_TYPES]
    if not pools:
        args.not_applicable("the stack has no InferencePool")
    for pool in pools:
        selector = get(pool.props, "spec", "selector")
        namespace = namespace_of(pool.props)
        selected = []
        for workload in args.resources:
            if workload.resource_type not in WORKLOAD_TYPES or namespace_of(workload.props) != namespace:
                continue
            template = pod_template(workload.resource_type, workload.props)
            if template is None:
                continue
            pod_labels = labels_of(get(workload.props, "spec", "template", "metadata", default={}))
            if selector_matches(selector, pod_labels):
                selected.append((workload, pod_labels))
        if not selected:
            yield (pool.urn, f"{pool.name} selects no pod of a workload in namespace {namespace}")
            continue
        others = [
            w.name for w, labels in selected if labels.get("app.kubernetes.io/component") != MODEL_SERVER_COMPONENT
        ]
        if others:
            yield (pool.urn, f"{pool.name} also selects pods that are not model servers: {', '.join(sorted(others))}")
        servers = sorted(
            w.name for w, labels in selected if labels.get("app.kubernetes.io/component") == MODEL_SERVER_COMPONENT
        )
        if len(servers) > 1:
            yield (pool.urn, f"{pool.name} selects the pods of more than one model server: {', '.join(servers)}")


RULE = Rule(
    id="SLM-NET-005",
    name="inference-pool-members",
    title="An InferencePool must select the pods of exactly one model server",
    severity="high",
    rationale="The endpoint picker may send any request of the pool to any pod the pool selects: a broad selector "
    "sends one model's requests, prompts included, to another model or to pods that never expected traffic.",
    remediation="Select the model server's pods by app.kubernetes.io/name and app.kubernetes.io/instance (as "
    "slm-deploy renders the pool); never by labels shared with other workloads.",
    controls={SLM: ("Traffic reaches only the model it is addressed to",), NSA: ("Network separation and hardening",)},
    kind="stack",
    resource_types=WORKLOAD_TYPES | POOL_TYPES,
    check=check,
)
