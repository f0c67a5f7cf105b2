"""CPU and memory recommendations for one model server: a VerticalPodAutoscaler (autoscaling.k8s.io/v1).

In ``Off`` mode (the default) the VPA recommender only writes what it would request into the object's
status; nothing restarts. That is what a model server wants: a restart reloads the weights (minutes) and
a GPU pod may wait for a free GPU, so the policy pack refuses any other mode for GPU servers
(``vpa-gpu-recommendation-only``). Only CPU and memory are recommended: the VPA has no notion of GPUs,
and the replica count stays with the queue-based autoscaler (KEDA or the HPA scale on queue length, not
on CPU or memory, so the two do not fight).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.config.autoscaling import VerticalAutoscaling

API_VERSION = "autoscaling.k8s.io/v1"
KIND = "VerticalPodAutoscaler"
#: What the VPA may recommend; GPUs and other extended resources are not its business.
CONTROLLED_RESOURCES = ("cpu", "memory")


@dataclass
class ModelVpaArgs:
    #: The Deployment (and the VPA's own name).
    deployment: str
    #: The server's container, the only one recommended for (init containers and sidecars are left alone).
    container: str
    #: The model's namespace as an output of its Namespace (so the object waits for it).
    namespace: pulumi.Input[str]
    settings: VerticalAutoscaling
    labels: dict[str, str] = field(default_factory=dict)


def vpa_spec(args: ModelVpaArgs) -> dict[str, object]:
    """The VPA's spec: the Deployment as target, the configured mode, CPU and memory of the server container."""
    return {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.deployment},
        # Always written out: the VPA's own default mode (Recreate) evicts pods.
        "updatePolicy": {"updateMode": args.settings.update_mode},
        "resourcePolicy": {
            "containerPolicies": [
                {"containerName": args.container, "controlledResources": list(CONTROLLED_RESOURCES)},
                # Every other container (a sidecar some mesh injects) gets no recommendation.
                {"containerName": "*", "mode": "Off"},
            ]
        },
    }


class ModelVpa(pulumi.ComponentResource):
    """The VerticalPodAutoscaler of one model server."""

    vpa: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: ModelVpaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:scaling:ModelVpa", name, None, opts)
        self.vpa = k8s.apiextensions.CustomResource(
            f"{name}-vpa",
            api_version=API_VERSION,
            kind=KIND,
            metadata=ObjectMetaArgs(name=args.deployment, namespace=args.namespace, labels=args.labels),
            spec=vpa_spec(args),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"updateMode": args.settings.update_mode})
