"""SLM-K8S-030 (stack): a VerticalPodAutoscaler of a GPU workload only recommends (``updateMode: "Off"``).

Any other mode applies recommendations by evicting (``Recreate``, ``Initial`` on the next start) or
resizing (``InPlaceOrRecreate``) pods. For a GPU model server each of those reloads the weights (minutes
without that replica) and the new pod may wait for a GPU to free up, so a recommendation costs an outage.
A VPA without ``updatePolicy.updateMode`` runs in the VPA's default mode, which evicts: it is refused too.

A stack rule, because the VPA alone does not say what it targets: the rule finds the Deployment or
StatefulSet of ``spec.targetRef`` in the VPA's namespace and looks for a GPU request in its pod template.
A VPA whose target is not in the stack cannot be judged and is reported as well (explicit ``Off`` passes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.k8s import REPLICATED_TYPES, containers, get, gpu_resources, namespace_of, pod_template
from ...lib.rule import SLM, Rule

VPA_TYPES = frozenset({"kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler"})
RECOMMEND_ONLY = "Off"


def _uses_gpus(resource_type: str, props: Mapping[str, Any]) -> bool:
    pod = pod_template(resource_type, props)
    if pod is None:
        return False
    return any(gpu_resources(c.body) for c in containers(pod.spec))


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    autoscalers = [r for r in args.resources if r.resource_type in VPA_TYPES]
    if not autoscalers:
        args.not_applicable("the stack has no VerticalPodAutoscaler")
    workloads = {
        (str(get(r.props, "kind", default=r.resource_type.rsplit(":", 1)[-1])), namespace_of(r.props), name): r
        for r in args.resources
        if r.resource_type in REPLICATED_TYPES and (name := get(r.props, "metadata", "name"))
    }
    for vpa in autoscalers:
        mode = get(vpa.props, "spec", "updatePolicy", "updateMode")
        if mode == RECOMMEND_ONLY:
            continue
        shown = f"updateMode {mode}" if mode else "no updateMode (the VPA's default mode evicts pods)"
        kind = str(get(vpa.props, "spec", "targetRef", "kind", default=""))
        name = str(get(vpa.props, "spec", "targetRef", "name", default=""))
        target = workloads.get((kind, namespace_of(vpa.props), name))
        if target is None:
            yield (
                vpa.urn,
                f"{vpa.name} targets {kind} '{name}', which is not in the stack, with {shown}: "
                "whether it serves on GPUs cannot be checked",
            )
        elif _uses_gpus(target.resource_type, target.props):
            yield (
                vpa.urn,
                f"{vpa.name} applies recommendations to {kind} '{name}', which requests GPUs ({shown}): "
                'use updateMode "Off"',
            )


RULE = Rule(
    id="SLM-K8S-030",
    name="vpa-gpu-recommendation-only",
    title="VerticalPodAutoscalers of GPU workloads must only recommend (updateMode Off)",
    severity="high",
    rationale="A VPA that applies its recommendations restarts or resizes pods; a GPU model server then reloads its "
    "weights and may wait for a free GPU, so right-sizing would cause outages. Recommendations are read by people "
    "(docs/sizing.md) and applied through the stack.",
    remediation='Set spec.updatePolicy.updateMode to "Off" (vpa.updateMode in the stack), and apply the '
    "recommendation to the model's resources in the stack file.",
    controls={SLM: ("Availability: voluntary disruptions", "GPU scheduling")},
    kind="stack",
    resource_types=REPLICATED_TYPES | VPA_TYPES,
    check=check,
)
