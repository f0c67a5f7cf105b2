"""SLM-NET-007 (stack): a Redis holding rate-limit counters requires a password and admits only chosen pods.

The global rate limit keeps every client's spent tokens in Redis. Anyone who can write there can reset a budget
(or exhaust another client's), and Redis without ``requirepass`` takes any connection. A Redis workload (an image
whose repository ends in ``/redis``) must get its configuration or password from a Secret, and a NetworkPolicy of
its namespace must select its pods for ingress with every ingress rule naming its peers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.images import parse_image
from ...lib.k8s import WORKLOAD_TYPES, containers, get, items, labels_of, namespace_of, pod_template, selector_matches
from ...lib.rule import NSA, SLM, Rule

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _is_redis(pod: Any) -> bool:
    for c in containers(pod.spec):
        image = get(c.body, "image")
        if image and parse_image(str(image)).path.rsplit("/", 1)[-1] == "redis":
            return True
    return False


def _secret_backed(pod: Any) -> bool:
    volumes = any(get(v, "secret") is not None for v in items(get(pod.spec, "volumes")))
    env = any(
        get(e, "valueFrom", "secretKeyRef") is not None for c in containers(pod.spec) for e in items(get(c.body, "env"))
    )
    return volumes or env


def _admits_only_peers(policy: Any, pod_labels: Mapping[str, str]) -> bool:
    spec = get(policy, "spec", default={})
    if not selector_matches(get(spec, "podSelector"), pod_labels):
        return False
    if "Ingress" not in items(get(spec, "policyTypes")):
        return False
    return all(items(get(rule, "from")) for rule in items(get(spec, "ingress")))


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    found = False
    for workload in args.resources:
        if workload.resource_type not in WORKLOAD_TYPES:
            continue
        pod = pod_template(workload.resource_type, workload.props)
        if pod is None or not _is_redis(pod):
            continue
        found = True
        if not _secret_backed(pod):
            yield (workload.urn, f"{workload.name}: Redis gets no password from a Secret: it takes any connection")
        namespace = namespace_of(workload.props)
        pod_labels = labels_of(get(workload.props, "spec", "template", "metadata", default={}))
        policies = [
            r.props for r in args.resources if r.resource_type == NETWORK_POLICY and namespace_of(r.props) == namespace
        ]
        if not any(_admits_only_peers(p, pod_labels) for p in policies):
            yield (
                workload.urn,
                f"{workload.name}: no NetworkPolicy limits who reaches Redis (select its pods for Ingress, name peers)",
            )
    if not found:
        args.not_applicable("the stack runs no Redis")


RULE = Rule(
    id="SLM-NET-007",
    name="rate-limit-store-hardened",
    title="A rate-limit Redis must require a password and admit only named peers",
    severity="high",
    rationale="The rate-limit counters are the token budgets: whoever can write to Redis can lift a client's "
    "budget or exhaust another's.",
    remediation="Deploy Redis with entryPoint.quotas.redis (a password from a stack secret, a network policy that "
    "admits only Envoy Gateway's rate-limit service).",
    controls={NSA: ("Network separation and hardening",), SLM: ("Spending has an owner and a ceiling",)},
    kind="stack",
    resource_types=WORKLOAD_TYPES | frozenset({NETWORK_POLICY}),
    check=check,
)
