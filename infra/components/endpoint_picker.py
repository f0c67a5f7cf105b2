"""A model's InferencePool and its endpoint picker (llm-d's router EPP), hardened like the model servers.

Request path with a pool: Envoy proxy → ext-proc call to the picker (gRPC, TLS, port 9002) with the request → the
picker answers with the pod to use (shortest queue, most free KV cache, longest cached prompt prefix, from vLLM's
metrics it scrapes) → Envoy sends the request to that pod's IP. The HTTPRoute's backendRef names the pool instead of
the Service. See ``docs/inference-pool.md``.

Definitions: the InferencePool is ``inference.networking.k8s.io/v1`` of the Gateway API Inference Extension v1.6.2
(config/crd/bases/inference.networking.k8s.io_inferencepools.yaml); the picker's flags, ports, probes and scorer
configuration follow llm-d/llm-d-router's chart (config/charts/routerlib/templates/_deployment.yaml and _config.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgs, DeploymentStrategyArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMapProjectionArgs,
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    DownwardAPIProjectionArgs,
    DownwardAPIVolumeFileArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    GRPCActionArgs,
    KeyToPathArgs,
    ObjectFieldSelectorArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ProjectedVolumeSourceArgs,
    ResourceRequirementsArgs,
    ServiceAccountTokenProjectionArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeProjectionArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    IPBlockArgs,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgs, RoleRefArgs, SubjectArgs

from infra.components.labels import (
    KUBE_DNS_LABELS,
    MANAGED_BY,
    NAMESPACE_NAME_LABEL,
    PART_OF,
    endpoint_picker_selector,
)
from infra.components.pod_security import container_security_context, pod_security_context
from infra.config import priority
from infra.config.inference_pool import INFERENCE_POOL_API, InferencePoolSettings, picker_name, pool_name
from infra.hardening import Hardening

INFERENCE_GROUP = "inference.networking.k8s.io"
#: The ext-proc port the gateway calls, the gRPC health port and the metrics port of the picker.
EXT_PROC_PORT = 9002
HEALTH_PORT = 9003
METRICS_PORT = 9090
CONFIG_FILE = "default-plugins.yaml"
#: Where client-go looks for the in-cluster token, CA and namespace: filled by a projected volume, so the pod
#: spec keeps ``automountServiceAccountToken: false`` and the token expires within the hour.
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_SECONDS = 3600
#: The API server's ports: 443 behind the ``kubernetes`` Service (AKS), 6443 on most self-managed control planes.
API_SERVER_PORTS = (443, 6443)


def scheduler_config() -> str:
    """The picker's scheduling profile: queue and KV-cache load plus prefix-cache affinity, weighted as llm-d's chart
    does (2, 2, 3). The prefix scorer hashes the prompts it routes; the others read vLLM's metrics."""
    config = {
        "apiVersion": "llm-d.ai/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": "queue-scorer"}, {"type": "kv-cache-utilization-scorer"}, {"type": "prefix-cache-scorer"}],
        "schedulingProfiles": [
            {
                "name": "default",
                "plugins": [
                    {"pluginRef": "queue-scorer", "weight": 2},
                    {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
                    {"pluginRef": "prefix-cache-scorer", "weight": 3},
                ],
            }
        ],
    }
    return str(yaml.safe_dump(config, sort_keys=False))


@dataclass
class EndpointPickerArgs:
    #: The model's config name (names the pool and the picker).
    model: str
    #: The model's namespace (the pool selects pods in its own namespace only).
    namespace: str
    settings: InferencePoolSettings
    #: Labels that select the model server's pods (the pool's members).
    pod_selector: Mapping[str, str]
    #: The engine's API port on the pods (the pool's target port) and where it serves metrics.
    target_port: int
    metrics_port: int
    #: The entry point's proxies (namespace, pod labels): the only callers of the picker.
    gateway_peer: tuple[str, dict[str, str]]
    #: Namespace of the Prometheus that scrapes the picker, or ``None`` without monitoring.
    monitoring_namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Resources the picker must wait for (the model's Namespace).
    depends_on: Sequence[pulumi.Resource] = ()


class EndpointPicker(pulumi.ComponentResource):
    """One InferencePool and its picker. Children are exposed as attributes as an escape hatch."""

    service_account: k8s.core.v1.ServiceAccount
    role: k8s.rbac.v1.Role
    role_binding: k8s.rbac.v1.RoleBinding
    config: k8s.core.v1.ConfigMap
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    network_policies: dict[str, k8s.networking.v1.NetworkPolicy]
    pool: k8s.apiextensions.CustomResource
    #: Labels that select the picker's pods (for its ServiceMonitor).
    selector: dict[str, str]

    def __init__(self, name: str, args: EndpointPickerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:network:EndpointPicker", name, None, opts)
        settings, ns = args.settings, args.namespace
        picker = picker_name(args.model)
        self.selector = endpoint_picker_selector(args.model)
        labels = {
            **dict(args.labels),
            **self.selector,
            "app.kubernetes.io/version": settings.image.tag,
            "app.kubernetes.io/component": "endpoint-picker",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))

        def meta(object_name: str) -> ObjectMetaArgs:
            return ObjectMetaArgs(name=object_name, namespace=ns, labels=labels)

        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=meta(picker), automount_service_account_token=False, opts=in_ns
        )
        # Read-only, in the model's namespace: the pool it serves and the pods the pool selects.
        self.role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=meta(picker),
            rules=[
                PolicyRuleArgs(api_groups=[""], resources=["pods"], verbs=["get", "list", "watch"]),
                PolicyRuleArgs(
                    api_groups=[INFERENCE_GROUP], resources=["inferencepools"], verbs=["get", "list", "watch"]
                ),
            ],
            opts=in_ns,
        )
        self.role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-role-binding",
            metadata=meta(picker),
            role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=picker),
            subjects=[SubjectArgs(kind="ServiceAccount", name=picker, namespace=ns)],
            opts=in_ns,
        )
        self.config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=meta(picker), data={CONFIG_FILE: scheduler_config()}, opts=in_ns
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta(picker),
            spec=DeploymentSpecArgs(
                replicas=settings.replicas,
                # One active picker: the old one stops before the new one starts (llm-d's chart does the same).
                strategy=DeploymentStrategyArgs(type="Recreate"),
                selector=LabelSelectorArgs(match_labels=self.selector),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=labels),
                    spec=_pod_spec(args, picker),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                in_ns, pulumi.ResourceOptions(depends_on=[self.config, self.role_binding])
            ),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(picker),
            spec=ServiceSpecArgs(
                type="ClusterIP",
                selector=self.selector,
                ports=[
                    ServicePortArgs(name="grpc", port=EXT_PROC_PORT, target_port="grpc", protocol="TCP"),
                    ServicePortArgs(name="metrics", port=METRICS_PORT, target_port="metrics", protocol="TCP"),
                ],
            ),
            opts=in_ns,
        )
        self.network_policies = _network_policies(name, args, labels, in_ns)
        self.pool = k8s.apiextensions.CustomResource(
            f"{name}-pool",
            api_version=INFERENCE_POOL_API,
            kind="InferencePool",
            metadata=meta(pool_name(args.model)),
            spec=pool_spec(args.pod_selector, args.target_port, picker, settings.failure_mode),
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[self.service])),
        )
        self.register_outputs(
            {
                "pool": f"{ns}/{pool_name(args.model)}",
                "picker": f"{ns}/{picker}",
                "image": settings.image.reference,
                "failureMode": settings.failure_mode,
            }
        )


def pool_spec(pod_selector: Mapping[str, str], target_port: int, picker: str, failure_mode: str) -> dict[str, object]:
    """The InferencePool: the model's server pods on the engine's port, picked by ``picker``."""
    return {
        "selector": {"matchLabels": dict(pod_selector)},
        "targetPorts": [{"number": target_port}],
        "endpointPickerRef": {
            "group": "",
            "kind": "Service",
            "name": picker,
            "port": {"number": EXT_PROC_PORT},
            "failureMode": failure_mode,
        },
    }


def _pod_spec(args: EndpointPickerArgs, picker: str) -> PodSpecArgs:
    settings = args.settings
    hardening = Hardening()
    health = ProbeArgs(grpc=GRPCActionArgs(port=HEALTH_PORT, service="inference-extension"), period_seconds=10)
    container = ContainerArgs(
        name="epp",
        image=settings.image.reference,
        image_pull_policy="IfNotPresent",
        args=[
            "--pool-name",
            pool_name(args.model),
            "--pool-namespace",
            args.namespace,
            "--pool-group",
            INFERENCE_GROUP,
            "--config-file",
            f"/config/{CONFIG_FILE}",
            "--grpc-health-port",
            str(HEALTH_PORT),
            "--zap-encoder",
            "json",
            # Prometheus scrapes without a token; only its pods reach the port (the metrics NetworkPolicy).
            "--metrics-endpoint-auth=false",
            "--tracing=false",
        ],
        env=[
            EnvVarArgs(
                name="NAMESPACE",
                value_from=EnvVarSourceArgs(field_ref=ObjectFieldSelectorArgs(field_path="metadata.namespace")),
            ),
            EnvVarArgs(
                name="POD_NAME",
                value_from=EnvVarSourceArgs(field_ref=ObjectFieldSelectorArgs(field_path="metadata.name")),
            ),
        ],
        ports=[
            ContainerPortArgs(name="grpc", container_port=EXT_PROC_PORT, protocol="TCP"),
            ContainerPortArgs(name="grpc-health", container_port=HEALTH_PORT, protocol="TCP"),
            ContainerPortArgs(name="metrics", container_port=METRICS_PORT, protocol="TCP"),
        ],
        resources=ResourceRequirementsArgs(
            requests={"cpu": settings.resources.requests.cpu, "memory": settings.resources.requests.memory},
            limits={"cpu": settings.resources.limits.cpu, "memory": settings.resources.limits.memory},
        ),
        security_context=container_security_context(hardening),
        liveness_probe=ProbeArgs(
            grpc=GRPCActionArgs(port=HEALTH_PORT, service="inference-extension"),
            initial_delay_seconds=5,
            period_seconds=10,
        ),
        readiness_probe=health,
        # The picker is ready once it has read the pool and its pods (seconds); a minute before it is restarted.
        startup_probe=ProbeArgs(
            grpc=GRPCActionArgs(port=HEALTH_PORT, service="inference-extension"), period_seconds=2, failure_threshold=30
        ),
        volume_mounts=[
            VolumeMountArgs(name="config", mount_path="/config", read_only=True),
            VolumeMountArgs(name="api-token", mount_path=TOKEN_DIR, read_only=True),
            VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ],
    )
    return PodSpecArgs(
        service_account_name=picker,
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=pod_security_context(hardening),
        # In-flight ext-proc streams end with their requests; a model request may stream for minutes.
        termination_grace_period_seconds=130,
        # Every request to the pool passes through the picker: above the model servers it picks among.
        priority_class_name=priority.SYSTEM.name,
        containers=[container],
        volumes=[
            VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=picker)),
            VolumeArgs(
                name="api-token",
                projected=ProjectedVolumeSourceArgs(
                    sources=[
                        VolumeProjectionArgs(
                            service_account_token=ServiceAccountTokenProjectionArgs(
                                path="token", expiration_seconds=TOKEN_SECONDS
                            )
                        ),
                        VolumeProjectionArgs(
                            config_map=ConfigMapProjectionArgs(
                                name="kube-root-ca.crt", items=[KeyToPathArgs(key="ca.crt", path="ca.crt")]
                            )
                        ),
                        VolumeProjectionArgs(
                            downward_api=DownwardAPIProjectionArgs(
                                items=[
                                    DownwardAPIVolumeFileArgs(
                                        path="namespace",
                                        field_ref=ObjectFieldSelectorArgs(field_path="metadata.namespace"),
                                    )
                                ]
                            )
                        ),
                    ]
                ),
            ),
            VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="64Mi")),
        ],
    )


def _network_policies(
    name: str, args: EndpointPickerArgs, labels: dict[str, str], opts: pulumi.ResourceOptions
) -> dict[str, k8s.networking.v1.NetworkPolicy]:
    """The picker's own allow-rules on top of the namespace's default deny: the gateway in on the ext-proc port,
    Prometheus in on the metrics port; out only to DNS, the model's pods (metrics) and the API server."""
    picker_pods = LabelSelectorArgs(match_labels=endpoint_picker_selector(args.model))

    def peer(namespace: str, pod_labels: Mapping[str, str]) -> NetworkPolicyPeerArgs:
        return NetworkPolicyPeerArgs(
            namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: namespace}),
            pod_selector=LabelSelectorArgs(match_labels=dict(pod_labels)),
        )

    gateway_namespace, proxy_labels = args.gateway_peer
    ingress = [
        NetworkPolicyIngressRuleArgs(
            from_=[peer(gateway_namespace, proxy_labels)],
            ports=[NetworkPolicyPortArgs(protocol="TCP", port=EXT_PROC_PORT)],
        )
    ]
    if args.monitoring_namespace is not None:
        ingress.append(
            NetworkPolicyIngressRuleArgs(
                from_=[peer(args.monitoring_namespace, {"app.kubernetes.io/name": "prometheus"})],
                ports=[NetworkPolicyPortArgs(protocol="TCP", port=METRICS_PORT)],
            )
        )
    egress = [
        NetworkPolicyEgressRuleArgs(
            to=[peer("kube-system", KUBE_DNS_LABELS)],
            ports=[NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")],
        ),
        NetworkPolicyEgressRuleArgs(
            to=[peer(args.namespace, args.pod_selector)],
            ports=[NetworkPolicyPortArgs(protocol="TCP", port=args.metrics_port)],
        ),
        NetworkPolicyEgressRuleArgs(
            to=[NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=cidr)) for cidr in args.settings.api_server_cidrs],
            ports=[NetworkPolicyPortArgs(protocol="TCP", port=port) for port in API_SERVER_PORTS],
        ),
    ]
    return {
        policy: k8s.networking.v1.NetworkPolicy(
            f"{name}-{policy}",
            metadata=ObjectMetaArgs(name=policy, namespace=args.namespace, labels=labels),
            spec=NetworkPolicySpecArgs(
                pod_selector=picker_pods,
                policy_types=["Ingress"] if rules is ingress else ["Egress"],
                ingress=ingress if rules is ingress else None,
                egress=egress if rules is egress else None,
            ),
            opts=opts,
        )
        for policy, rules in (("endpoint-picker-allow-ingress", ingress), ("endpoint-picker-allow-egress", egress))
    }
