"""Queue-based autoscaling of one model server (KEDA itself is :mod:`infra.components.keda`).

GPU utilisation is a poor signal for LLM serving (a batch-friendly server sits near 100% long before
it is overloaded); the queue of waiting requests is what users feel. KEDA scales on
``vllm:num_requests_waiting`` from Prometheus (KAITO and vLLM's production stack do the same), with
stabilisation windows suited to start-ups that take minutes.

A model that scales to zero (``autoscaling.scaleToZero``) has no pod to export the queue when idle: the KEDA HTTP
add-on's interceptor counts its requests instead and holds them while a replica starts. It gets an
HTTPScaledObject that routes and counts but creates no ScaledObject of its own (annotation
``skip-scaledobject-creation``): the model's one ScaledObject carries both triggers, the add-on's (wakes it from
zero) and the queue (scales it beyond one). docs/scale-to-zero.md.
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
from infra.config.http_add_on import (
    HTTP_SCALED_OBJECT_API,
    SKIP_SCALED_OBJECT_ANNOTATION,
    external_scaler_address,
)

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
    #: The engine's queue metric (``None``: the engine exports none, as Ollama; only a model that scales to zero
    #: scales then, on the interceptor's count), and the label naming the model on it (``None``: the series are
    #: told apart by pod, as llama.cpp's, which carry no model label).
    queue_metric: str | None = QUEUE_METRIC
    model_label: str | None = "model_name"
    #: With ``scaling.scale_to_zero``: how the interceptor reaches the model and how long it holds a request.
    wake: WakeOnRequest | None = None


@dataclass(frozen=True)
class WakeOnRequest:
    """What the HTTP add-on needs to route a scaled-to-zero model's requests and hold them while it starts."""

    #: The model's Service and API port, where the interceptor forwards once a replica is ready.
    service: str
    port: int
    #: The Host the interceptor routes by (:func:`infra.config.http_add_on.interceptor_host`) and the API's path.
    host: str
    path_prefix: str
    #: KEDA's namespace, where the add-on's external scaler runs.
    keda_namespace: str
    #: How long the interceptor holds a request while a replica starts (the start-up budget).
    wake_timeout_seconds: int


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
    #: The HTTP add-on's routing and request count, for a model that scales to zero.
    http_scaled_object: k8s.apiextensions.CustomResource | None

    def __init__(self, name: str, args: ModelAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:scaling:ModelAutoscaler", name, None, opts)
        scaling = args.scaling
        self.scaled_object = None
        self.hpa = None
        self.http_scaled_object = None
        child = pulumi.ResourceOptions(parent=self)
        metadata = ObjectMetaArgs(name=args.deployment, namespace=args.namespace, labels=args.labels)
        if scaling.backend == "keda":
            depends_on: list[pulumi.Resource] = []
            if args.wake is not None:
                # First: the ScaledObject's trigger names it, and without the annotation the add-on would create a
                # second ScaledObject for the same Deployment.
                self.http_scaled_object = k8s.apiextensions.CustomResource(
                    f"{name}-httpscaledobject",
                    api_version=HTTP_SCALED_OBJECT_API,
                    kind="HTTPScaledObject",
                    metadata=ObjectMetaArgs(
                        name=args.deployment,
                        namespace=args.namespace,
                        labels=args.labels,
                        annotations={SKIP_SCALED_OBJECT_ANNOTATION: "true"},
                    ),
                    spec=_http_scaled_object_spec(args, args.wake),
                    opts=child,
                )
                depends_on.append(self.http_scaled_object)
            self.scaled_object = k8s.apiextensions.CustomResource(
                f"{name}-scaledobject",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata=metadata,
                spec=_scaled_object_spec(args),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
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
        self.register_outputs(
            {
                "backend": scaling.backend,
                "minReplicas": scaling.min_replicas,
                "maxReplicas": scaling.max_replicas,
                "scaleToZero": args.wake is not None,
            }
        )


def _http_scaled_object_spec(args: ModelAutoscalerArgs, wake: WakeOnRequest) -> dict[str, object]:
    """Routing (Host and path), the request count, and the timeouts of the interceptor for one model."""
    scaling = args.scaling
    return {
        "hosts": [wake.host],
        "pathPrefixes": [wake.path_prefix],
        "scaleTargetRef": {
            "name": args.deployment,
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "service": wake.service,
            "port": wake.port,
        },
        # Read only when the add-on makes the ScaledObject itself (not here): kept equal to the model's own.
        "replicas": {"min": 0, "max": scaling.max_replicas},
        "scaledownPeriod": scaling.scale_to_zero.idle_seconds,
        "scalingMetric": {"concurrency": {"targetValue": scaling.scale_to_zero.concurrency_per_replica}},
        "timeouts": {
            # The start-up budget: how long a request waits for the first ready replica.
            "conditionWait": f"{wake.wake_timeout_seconds}s",
            "responseHeader": f"{scaling.scale_to_zero.response_header_timeout_seconds}s",
        },
    }


def _triggers(args: ModelAutoscalerArgs) -> list[dict[str, object]]:
    scaling = args.scaling
    if args.queue_metric is None:
        # An engine without a queue metric (Ollama) scales on the interceptor's count alone; validated: only a model
        # that scales to zero autoscales without one.
        assert args.wake is not None
        return [_interceptor_trigger(args.deployment, args.wake)]
    queue: dict[str, object] = {
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
    if args.wake is None:
        return [queue]
    return [_interceptor_trigger(args.deployment, args.wake), queue]


def _interceptor_trigger(deployment: str, wake: WakeOnRequest) -> dict[str, object]:
    # The add-on's count of in-flight requests at the interceptor: non-zero as soon as a request waits there, which
    # is what wakes an idle model (its queue metric has no pod to come from at zero).
    return {
        "type": "external-push",
        "metadata": {"scalerAddress": external_scaler_address(wake.keda_namespace), "httpScaledObject": deployment},
    }


def _scaled_object_spec(args: ModelAutoscalerArgs) -> dict[str, object]:
    scaling = args.scaling
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.deployment},
        "minReplicaCount": scaling.min_replicas,
        "maxReplicaCount": scaling.max_replicas,
        "pollingInterval": scaling.polling_interval_seconds,
        # Only used when scaling to zero: how long an idle model stays loaded.
        "cooldownPeriod": scaling.scale_to_zero.idle_seconds
        if args.wake is not None
        else scaling.scale_down_stabilization_seconds,
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
        "triggers": _triggers(args),
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
