"""Default-deny network isolation for one model namespace, plus the allow-rules the server needs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    IPBlockArgs,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)

from infra.components.labels import KUBE_DNS_LABELS, NAMESPACE_NAME_LABEL
from infra.config.network import NetworkConfig

#: kube-prometheus-stack's Prometheus pods.
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}


@dataclass(frozen=True)
class Flow:
    """One allowed connection, as a reviewer reads it."""

    direction: str
    peer: str
    port: str
    policy: str


@dataclass
class ModelNetworkPolicyArgs:
    namespace: pulumi.Input[str]
    #: Labels that select the model server's pods (ingress is allowed to these only).
    pod_selector: dict[str, str]
    #: Labels that select every pod of the model (server and preparation Job): DNS and download egress.
    egress_selector: dict[str, str]
    #: Labels put on each NetworkPolicy.
    labels: dict[str, str]
    serving_port: int
    metrics_port: int | None
    network: NetworkConfig
    #: Namespace of the Prometheus that scrapes the metrics port.
    monitoring_namespace: str
    #: The entry point's proxies (namespace, pod labels), when the stack has one.
    gateway_peer: tuple[str, dict[str, str]] | None = None
    #: The model's endpoint picker (namespace, pod labels), when it is routed through an InferencePool: the picker
    #: reads the servers' metrics to choose a pod.
    endpoint_picker: tuple[str, dict[str, str]] | None = None
    #: Whether the model's pods fetch anything (False when the weights come in an image volume: the kubelet pulls
    #: the image, so no pod of the model needs download egress even where the stack allows downloads).
    downloads: bool = True
    #: The KEDA HTTP add-on's interceptor (namespace, pod labels), when the model scales to zero: it forwards the
    #: requests it held while a replica started.
    interceptor_peer: tuple[str, dict[str, str]] | None = None
    #: Private CIDRs never reachable by the download rule even when the configured block covers them.
    download_except: list[str] = field(default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])


class ModelNetworkPolicy(pulumi.ComponentResource):
    """Deny all traffic of a model namespace, then allow only what serving needs, one policy per flow."""

    policies: dict[str, k8s.networking.v1.NetworkPolicy]
    flows: list[Flow]

    def __init__(self, name: str, args: ModelNetworkPolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:network:ModelNetworkPolicy", name, None, opts)
        self._name = name
        self._args = args
        self.policies = {}
        self.flows = []
        pods = LabelSelectorArgs(match_labels=args.pod_selector)
        model_pods = LabelSelectorArgs(match_labels=args.egress_selector)

        self._policy("default-deny", LabelSelectorArgs(), ["Ingress", "Egress"])
        dns_ports = [NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")]
        self._policy(
            "allow-dns-egress",
            model_pods,
            ["Egress"],
            egress=[
                NetworkPolicyEgressRuleArgs(
                    to=[
                        NetworkPolicyPeerArgs(
                            namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: "kube-system"}),
                            pod_selector=LabelSelectorArgs(match_labels=KUBE_DNS_LABELS),
                        )
                    ],
                    ports=dns_ports,
                )
            ],
        )
        self.flows += [Flow("egress", "kube-system/kube-dns", f"{p}/53", "allow-dns-egress") for p in ("UDP", "TCP")]

        if args.network.ingress_from_namespaces:
            self._allow_ingress(
                "allow-serving-ingress",
                pods,
                [(namespace, None, f"{namespace}/*") for namespace in args.network.ingress_from_namespaces],
                args.serving_port,
            )
        if args.gateway_peer is not None:
            gateway_namespace, proxy_labels = args.gateway_peer
            self._allow_ingress(
                "allow-entry-point-ingress",
                pods,
                [(gateway_namespace, proxy_labels, f"{gateway_namespace}/envoy")],
                args.serving_port,
            )
        if args.interceptor_peer is not None:
            interceptor_namespace, interceptor_labels = args.interceptor_peer
            self._allow_ingress(
                "allow-interceptor-ingress",
                pods,
                [(interceptor_namespace, interceptor_labels, f"{interceptor_namespace}/keda-http-interceptor")],
                args.serving_port,
            )
        if args.endpoint_picker is not None:
            picker_namespace, picker_labels = args.endpoint_picker
            self._allow_ingress(
                "allow-endpoint-picker-ingress",
                pods,
                [(picker_namespace, picker_labels, f"{picker_namespace}/endpoint-picker")],
                args.metrics_port or args.serving_port,
            )
        if args.metrics_port is not None:
            monitoring = args.monitoring_namespace
            self._allow_ingress(
                "allow-metrics-ingress",
                pods,
                [(monitoring, PROMETHEUS_POD_LABELS, f"{monitoring}/prometheus")],
                args.metrics_port,
            )

        self.cilium_policy: k8s.apiextensions.CustomResource | None = None
        downloads = args.downloads and args.network.model_download == "allow"
        if downloads and args.network.policy_engine == "cilium":
            self._cilium_download(args)
        elif downloads:
            self._policy(
                "allow-model-download-egress",
                model_pods,
                ["Egress"],
                egress=[
                    NetworkPolicyEgressRuleArgs(
                        to=[
                            NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=cidr, except_=_excepts(cidr, args)))
                            for cidr in args.network.download_cidrs
                        ],
                        ports=[NetworkPolicyPortArgs(protocol="TCP", port=443)],
                    )
                ],
            )
            self.flows += [
                Flow("egress", cidr, "TCP/443", "allow-model-download-egress") for cidr in args.network.download_cidrs
            ]

        self.register_outputs({"policies": sorted(self.policies), "flows": [vars(flow) for flow in self.flows]})

    def _cilium_download(self, args: ModelNetworkPolicyArgs) -> None:
        """Egress to the model hub by host name: Cilium resolves the names through its DNS proxy."""
        hosts = args.network.download_hosts
        self.cilium_policy = k8s.apiextensions.CustomResource(
            f"{self._name}-allow-model-download-fqdn",
            api_version="cilium.io/v2",
            kind="CiliumNetworkPolicy",
            metadata=ObjectMetaArgs(name="allow-model-download-fqdn", namespace=args.namespace, labels=args.labels),
            spec={
                "endpointSelector": {"matchLabels": args.egress_selector},
                "egress": [
                    {
                        # DNS through Cilium's proxy, so that toFQDNs learns the addresses of the hosts; the
                        # proxy sees every lookup, and toFQDNs below decides where connections may go.
                        "toEndpoints": [
                            {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", **KUBE_DNS_LABELS}}
                        ],
                        "toPorts": [
                            {
                                "ports": [{"port": "53", "protocol": "ANY"}],
                                "rules": {"dns": [{"matchPattern": "*"}]},
                            }
                        ],
                    },
                    {
                        "toFQDNs": [
                            {"matchPattern": host} if host.startswith("*.") else {"matchName": host} for host in hosts
                        ],
                        "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
                    },
                ],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.flows += [Flow("egress", host, "TCP/443", "allow-model-download-fqdn") for host in hosts]

    def _allow_ingress(
        self,
        policy_name: str,
        pods: LabelSelectorArgs,
        peers: list[tuple[str, dict[str, str] | None, str]],
        port: int,
    ) -> None:
        """Ingress to ``port`` of ``pods`` from each peer: (namespace, pod labels or None for any pod, as shown)."""
        self._policy(
            policy_name,
            pods,
            ["Ingress"],
            ingress=[
                NetworkPolicyIngressRuleArgs(
                    from_=[
                        NetworkPolicyPeerArgs(
                            namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: namespace}),
                            pod_selector=LabelSelectorArgs(match_labels=labels) if labels is not None else None,
                        )
                        for namespace, labels, _ in peers
                    ],
                    ports=[NetworkPolicyPortArgs(protocol="TCP", port=port)],
                )
            ],
        )
        self.flows += [Flow("ingress", shown, f"TCP/{port}", policy_name) for _, _, shown in peers]

    def _policy(
        self,
        policy_name: str,
        pods: LabelSelectorArgs,
        types: list[str],
        ingress: list[NetworkPolicyIngressRuleArgs] | None = None,
        egress: list[NetworkPolicyEgressRuleArgs] | None = None,
    ) -> None:
        self.policies[policy_name] = k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{policy_name}",
            metadata=ObjectMetaArgs(name=policy_name, namespace=self._args.namespace, labels=self._args.labels),
            spec=NetworkPolicySpecArgs(pod_selector=pods, policy_types=types, ingress=ingress, egress=egress),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _excepts(cidr: str, args: ModelNetworkPolicyArgs) -> list[str] | None:
    """Private ranges inside an allowed public block (``0.0.0.0/0`` must not open the cluster network)."""
    import ipaddress

    block = ipaddress.ip_network(cidr)
    inside = [
        e
        for e in args.download_except
        if block.version == 4 and ipaddress.ip_network(e).subnet_of(block)  # type: ignore[arg-type]
    ]
    return inside or None
