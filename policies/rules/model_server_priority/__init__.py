"""SLM-K8S-028 (stack): model servers run at the project's PriorityClass, below the system components.

Without a ``priorityClassName`` a GPU server runs at the cluster's default priority, beside any batch pod, and
waits behind them for a node. With a class above the system components' (the gateway's proxies, the endpoint
pickers, Prometheus), a model server that does not fit would evict the very pods every request passes through.
The rule looks at every pod template labelled ``app.kubernetes.io/component: model-server`` and the
PriorityClasses of the stack (docs/scheduling.md):

- it must name ``servingClass`` (``slm-deploy-serving`` unless the level says otherwise);
- that class must be a PriorityClass of the stack (else its value cannot be checked);
- its value must be below ``systemClass``'s (a PriorityClass of the stack too) and below the built-in
  ``system-cluster-critical`` and ``system-node-critical``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, get, is_model_server, pod_template
from ...lib.rule import SLM, Rule

PRIORITY_CLASS_TYPES = frozenset({"kubernetes:scheduling.k8s.io/v1:PriorityClass"})
#: The classes Kubernetes creates itself (kube-system's pods).
BUILT_IN = {"system-cluster-critical": 2_000_000_000, "system-node-critical": 2_000_001_000}


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    serving, system = str(config["servingClass"]), str(config["systemClass"])
    classes = dict(BUILT_IN)
    for r in args.resources:
        if r.resource_type in PRIORITY_CLASS_TYPES and (name := get(r.props, "metadata", "name")):
            classes[str(name)] = int(float(get(r.props, "value", default=0)))
    servers = [
        (r, pod)
        for r in args.resources
        if r.resource_type in WORKLOAD_TYPES
        and (pod := pod_template(r.resource_type, r.props)) is not None
        and is_model_server(pod)
    ]
    if not servers:
        args.not_applicable("the stack has no model server")
    ceiling = min(value for name, value in classes.items() if name in (system, *BUILT_IN))
    if system not in classes:
        yield None, f"the stack renders no PriorityClass '{system}' (systemClass) to keep model servers below"
    for server, pod in servers:
        name = get(pod.spec, "priorityClassName")
        if not name:
            yield (
                server.urn,
                f"{server.name} has no priorityClassName: it runs at the cluster's default priority, beside batch "
                f"work (use '{serving}')",
            )
            continue
        name = str(name)
        if name not in classes:
            yield (
                server.urn,
                f"{server.name} names PriorityClass '{name}', which is not in the stack: its value cannot be checked",
            )
            continue
        if name != serving:
            yield server.urn, f"{server.name} names PriorityClass '{name}', not the project's '{serving}'"
        if classes[name] >= ceiling:
            yield (
                server.urn,
                f"{server.name}'s PriorityClass '{name}' ({classes[name]}) is not below the system components' "
                f"({ceiling}): a model server that does not fit would evict the gateway or monitoring",
            )


RULE = Rule(
    id="SLM-K8S-028",
    name="model-server-priority",
    title="Model servers must run at the project's PriorityClass, below the system components",
    severity="medium",
    rationale=(
        "GPU model servers are scarce and slow to start: at default priority they queue behind any batch pod; "
        "above the gateway, the endpoint pickers and monitoring they would evict what every request passes through."
    ),
    remediation=(
        "Set the pod template's priorityClassName to the serving class slm-deploy renders (slm-deploy-serving) "
        "and keep its value below the system class (slm-deploy-system)."
    ),
    controls={SLM: ("GPU scheduling", "Availability: voluntary disruptions")},
    kind="stack",
    resource_types=WORKLOAD_TYPES | PRIORITY_CLASS_TYPES,
    config={
        "servingClass": {
            "type": "string",
            "default": "slm-deploy-serving",
            "description": "The PriorityClass every model server must name.",
        },
        "systemClass": {
            "type": "string",
            "default": "slm-deploy-system",
            "description": "The system components' PriorityClass; model servers stay below it.",
        },
    },
    check=check,
)
