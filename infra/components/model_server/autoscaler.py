"""Queue-based autoscaling of one model server (KEDA itself is :mod:`infra.components.keda`).

GPU utilisation is a poor signal for LLM serving (a batch-friendly server sits near 100% long before
it is overloaded); the queue of waiting requests is what users feel. KEDA scales on
``vllm:num_requests_waiting`` from Prometheus (KAITO and vLLM's production stack do the same), with
stabilisation windows suited to start-ups that take minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.autoscaling.v2 import (
    CrossVersionObjectReferenceArgs,
    HorizontalPodAutoscalerBehaviorArgs,
    HorizontalPodAutoscalerSpecArgs,
    HPAScalingPolicyArgs,
    HPAScalingRulesArgs,
    MetricIdentifierArgs,
    MetricSpecArgs,
    MetricTargetArgs,
    PodsMetricSourceArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.config.autoscaling import Autoscaling

#: The queue metric the servers export (vLLM, and the ONNX server under the same name).
QUEUE_METRIC = "vllm:num_requests_waiting"


@dataclass
class ModelAutoscalerArgs:
    deployment: str
    #: The model's namespace as an output of its Namespace (so the objects wait for it).
    namespace: pulumi.Input[str]
    #: The same namespace by name, for the Prometheus query.
    namespace_name: str
    #: The API name of the model (``model_name`` label of the vLLM metrics).
    served_model_name: str
    scaling: Autoscaling
    #: Prometheus query URL (KEDA backend).
    prometheus_url: str
    labels: dict[str, str] = field(default_factory=dict)
    #: The engine's queue metric, and the label naming the model on it (``None``: the series are told apart by
    #: pod, as llama.cpp's, which carry no model label).
    queue_metric: str = QUEUE_METRIC
    model_label: str | None = "model_name"


def queue_query(
    namespace: str,
    served_model_name: str,
    metric: str = QUEUE_METRIC,
    model_label: str | None = "model_name",
    deployment: str = "",
) -> str:
    """Total waiting requests of one model across its replicas."""
    if model_label is None:
        return f'sum({metric}{{namespace="{namespace}",pod=~"{deployment}-[a-z0-9]+-[a-z0-9]+"}})'
    return f'sum({metric}{{namespace="{namespace}",{model_label}="{served_model_name}"}})'


class ModelAutoscaler(pulumi.ComponentResource):
    """A KEDA ScaledObject (or an HPA on the Prometheus adapter) that owns a model's replica count."""

    scaled_object: k8s.apiextensions.CustomResource | None
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None

    def __init__(self, name: str, args: ModelAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:scaling:ModelAutoscaler", name, None, opts)
        scaling = args.scaling
        self.scaled_object = None
        self.hpa = None
        child = pulumi.ResourceOptions(parent=self)
        metadata = ObjectMetaArgs(name=args.deployment, namespace=args.namespace, labels=args.labels)
        if scaling.backend == "keda":
            self.scaled_object = k8s.apiextensions.CustomResource(
                f"{name}-scaledobject",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata=metadata,
                spec=_scaled_object_spec(args),
                opts=child,
            )
        else:
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=metadata,
                spec=HorizontalPodAutoscalerSpecArgs(
                    scale_target_ref=CrossVersionObjectReferenceArgs(
                        api_version="apps/v1", kind="Deployment", name=args.deployment
                    ),
                    min_replicas=scaling.min_replicas,
                    max_replicas=scaling.max_replicas,
                    metrics=[
                        MetricSpecArgs(
                            type="Pods",
                            pods=PodsMetricSourceArgs(
                                metric=MetricIdentifierArgs(name=scaling.hpa_metric),
                                target=MetricTargetArgs(
                                    type="AverageValue", average_value=f"{scaling.target_queue_per_replica:g}"
                                ),
                            ),
                        )
                    ],
                    behavior=_behavior(scaling),
                ),
                opts=child,
            )
        self.register_outputs({"backend": scaling.backend, "maxReplicas": scaling.max_replicas})


def _scaled_object_spec(args: ModelAutoscalerArgs) -> dict[str, object]:
    scaling = args.scaling
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.deployment},
        "minReplicaCount": scaling.min_replicas,
        "maxReplicaCount": scaling.max_replicas,
        "pollingInterval": scaling.polling_interval_seconds,
        # Only used when scaling to zero: how long an idle model stays loaded.
        "cooldownPeriod": scaling.scale_down_stabilization_seconds,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleUp": {
                        "stabilizationWindowSeconds": scaling.scale_up_stabilization_seconds,
                        "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
                    },
                    "scaleDown": {
                        "stabilizationWindowSeconds": scaling.scale_down_stabilization_seconds,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                    },
                }
            }
        },
        "triggers": [
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": args.prometheus_url,
                    "query": queue_query(
                        args.namespace_name,
                        args.served_model_name,
                        args.queue_metric,
                        args.model_label,
                        args.deployment,
                    ),
                    "threshold": f"{scaling.target_queue_per_replica:g}",
                    # Wake a scaled-to-zero model on the first waiting request.
                    "activationThreshold": "0",
                },
            }
        ],
    }


def _behavior(scaling: Autoscaling) -> HorizontalPodAutoscalerBehaviorArgs:
    return HorizontalPodAutoscalerBehaviorArgs(
        scale_up=HPAScalingRulesArgs(
            stabilization_window_seconds=scaling.scale_up_stabilization_seconds,
            policies=[HPAScalingPolicyArgs(type="Pods", value=2, period_seconds=60)],
        ),
        scale_down=HPAScalingRulesArgs(
            stabilization_window_seconds=scaling.scale_down_stabilization_seconds,
            policies=[HPAScalingPolicyArgs(type="Pods", value=1, period_seconds=300)],
        ),
    )
