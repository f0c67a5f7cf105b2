"""The Redis that holds Envoy Gateway's global rate-limit counters (the token budgets of docs/quotas.md).

Envoy Gateway runs its rate-limit service (``envoy-ratelimit``, envoyproxy/ratelimit) in the controller's namespace
and points it at one Redis (``rateLimit.backend.redis.url`` of the EnvoyGateway config). This component runs that
Redis in a namespace of its own (Pod Security ``restricted``, default-deny network policy), hardened: a pinned
image, non-root with a read-only root file system, no service-account token, a password from a stack secret (a
config file in a Secret, never on the command line; a copy for the rate-limit service's ``REDIS_AUTH`` in the
controller's namespace), dangerous commands disabled, and a network policy that admits only the rate-limit
service's pods. Counters live in memory only
(no PVC): a restart forgives what the current windows have spent, which docs/quotas.md weighs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgs, DeploymentStrategyArgs
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    KeyToPathArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    SecretVolumeSourceArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    TCPSocketActionArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)

from infra.components.labels import MANAGED_BY, NAMESPACE_NAME_LABEL, PART_OF
from infra.components.pod_security import container_security_context, pod_security_context, restricted_namespace
from infra.config import priority
from infra.config.quotas import REDIS_NAME, REDIS_PASSWORD_KEY, RateLimitRedis
from infra.hardening import Hardening

REDIS_PORT = 6379
CONFIG_KEY = "redis.conf"
#: Redis's working folder in the pod (an emptyDir; nothing is written there with persistence off).
DATA_DIR = "/data"
#: Labels Envoy Gateway puts on its rate-limit service's pods (the only clients Redis admits).
RATE_LIMIT_POD_LABELS = {"app.kubernetes.io/name": "envoy-ratelimit"}
#: Commands the rate-limit service never sends and an intruder would want: disabled (renamed to "").
DISABLED_COMMANDS = ("FLUSHALL", "FLUSHDB", "CONFIG", "DEBUG", "SHUTDOWN", "MODULE", "SCRIPT", "EVAL", "KEYS")


def redis_config(password: str, data_dir: str = DATA_DIR) -> str:
    """redis.conf: authentication required, no persistence (a read-only root fs, counters are soft state).

    ``data_dir`` is Redis's working folder (it must exist when Redis reads the file): the pod's emptyDir.
    """
    lines = [
        "port 6379",
        "bind * -::*",
        "protected-mode yes",
        f"requirepass {password}",
        'save ""',
        "appendonly no",
        f"dir {data_dir}",
        "maxmemory 200mb",
        # Counters expire with their window; under memory pressure drop the nearest-to-expiry ones.
        "maxmemory-policy volatile-ttl",
        *(f'rename-command {command} ""' for command in DISABLED_COMMANDS),
    ]
    return "\n".join(lines) + "\n"


def redis_url(namespace: str) -> str:
    """host:port of Redis as the rate-limit service dials it (``rateLimit.backend.redis.url``)."""
    return f"{REDIS_NAME}.{namespace}.svc.cluster.local:{REDIS_PORT}"


@dataclass
class RateLimitStoreArgs:
    settings: RateLimitRedis
    #: The gateway controller's namespace (where Envoy Gateway runs its rate-limit service, Redis's only client).
    client_namespace: str
    #: The Pulumi secret holding the password.
    password: pulumi.Input[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Resources the client's Secret must wait for (the controller's Namespace when the stack creates it).
    client_depends_on: Sequence[pulumi.Resource] = ()


class RateLimitStore(pulumi.ComponentResource):
    """Redis for the global rate limit. Children are exposed as attributes as an escape hatch."""

    namespace: k8s.core.v1.Namespace
    secret: k8s.core.v1.Secret
    #: The password alone, in the controller's namespace, for the rate-limit service.
    client_secret: k8s.core.v1.Secret
    service_account: k8s.core.v1.ServiceAccount
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    network_policies: dict[str, k8s.networking.v1.NetworkPolicy]
    selector: dict[str, str]

    def __init__(self, name: str, args: RateLimitStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:network:RateLimitStore", name, None, opts)
        settings = args.settings
        ns = settings.namespace
        self.selector = {"app.kubernetes.io/name": REDIS_NAME, "app.kubernetes.io/instance": name}
        labels = {
            **dict(args.labels),
            **self.selector,
            "app.kubernetes.io/version": settings.image.tag,
            "app.kubernetes.io/component": "rate-limit-store",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }
        self.namespace = restricted_namespace(f"{name}-namespace", ns, labels, opts=pulumi.ResourceOptions(parent=self))
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        meta = ObjectMetaArgs(name=REDIS_NAME, namespace=ns, labels=labels)

        password = pulumi.Output.secret(args.password)
        self.client_secret = k8s.core.v1.Secret(
            f"{name}-client-secret",
            metadata=ObjectMetaArgs(name=REDIS_NAME, namespace=args.client_namespace, labels=labels),
            type="Opaque",
            string_data=password.apply(lambda text: {REDIS_PASSWORD_KEY: text}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.client_depends_on)),
        )
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=meta,
            type="Opaque",
            string_data=password.apply(lambda text: {CONFIG_KEY: redis_config(text)}),
            opts=in_ns,
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=meta, automount_service_account_token=False, opts=in_ns
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta,
            spec=DeploymentSpecArgs(
                # One Redis: the rate-limit service has one backend address; counters are soft state.
                replicas=1,
                strategy=DeploymentStrategyArgs(type="Recreate"),
                selector=LabelSelectorArgs(match_labels=self.selector),
                template=PodTemplateSpecArgs(metadata=ObjectMetaArgs(labels=labels), spec=_pod_spec(settings)),
            ),
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[self.secret])),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta,
            spec=ServiceSpecArgs(
                type="ClusterIP",
                selector=self.selector,
                ports=[ServicePortArgs(name="redis", port=REDIS_PORT, target_port="redis", protocol="TCP")],
            ),
            opts=in_ns,
        )
        rate_limit_service = NetworkPolicyPeerArgs(
            namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: args.client_namespace}),
            pod_selector=LabelSelectorArgs(match_labels=RATE_LIMIT_POD_LABELS),
        )
        specs = {
            # Redis calls nothing (no replication, no DNS): the default deny is all the egress it gets.
            "default-deny": NetworkPolicySpecArgs(pod_selector=LabelSelectorArgs(), policy_types=["Ingress", "Egress"]),
            "allow-rate-limit-ingress": NetworkPolicySpecArgs(
                pod_selector=LabelSelectorArgs(match_labels=self.selector),
                policy_types=["Ingress"],
                ingress=[
                    NetworkPolicyIngressRuleArgs(
                        from_=[rate_limit_service], ports=[NetworkPolicyPortArgs(port=REDIS_PORT, protocol="TCP")]
                    )
                ],
            ),
        }
        self.network_policies = {
            policy: k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}",
                metadata=ObjectMetaArgs(name=policy, namespace=ns, labels=labels),
                spec=spec,
                opts=in_ns,
            )
            for policy, spec in specs.items()
        }
        self.register_outputs({"redis": f"{ns}/{REDIS_NAME}", "url": redis_url(ns), "image": settings.image.reference})


def _pod_spec(settings: RateLimitRedis) -> PodSpecArgs:
    # The project's UID (10001), not the image's `redis` user (999): Redis needs no passwd entry, only a writable
    # /data (the emptyDir, group fsGroup) and a readable config (the Secret, mode 0440 to group fsGroup).
    hardening = Hardening()
    alive = ProbeArgs(tcp_socket=TCPSocketActionArgs(port=REDIS_PORT), period_seconds=10)
    container = ContainerArgs(
        name="redis",
        image=settings.image.reference,
        image_pull_policy="IfNotPresent",
        command=["redis-server", f"/etc/redis/{CONFIG_KEY}"],
        ports=[ContainerPortArgs(name="redis", container_port=REDIS_PORT, protocol="TCP")],
        resources=ResourceRequirementsArgs(
            requests={"cpu": settings.resources.requests.cpu, "memory": settings.resources.requests.memory},
            limits={"cpu": settings.resources.limits.cpu, "memory": settings.resources.limits.memory},
        ),
        security_context=container_security_context(hardening),
        liveness_probe=alive,
        readiness_probe=ProbeArgs(tcp_socket=TCPSocketActionArgs(port=REDIS_PORT), period_seconds=5),
        # An empty Redis starts in well under a second; a minute before the kubelet restarts it.
        startup_probe=ProbeArgs(
            tcp_socket=TCPSocketActionArgs(port=REDIS_PORT), period_seconds=2, failure_threshold=30
        ),
        volume_mounts=[
            VolumeMountArgs(name="config", mount_path="/etc/redis", read_only=True),
            VolumeMountArgs(name="data", mount_path=DATA_DIR),
        ],
    )
    return PodSpecArgs(
        service_account_name=REDIS_NAME,
        automount_service_account_token=False,
        enable_service_links=False,
        # Without it no budget is checked: a system component, like the proxies that call it.
        priority_class_name=priority.SYSTEM.name,
        security_context=pod_security_context(hardening),
        containers=[container],
        volumes=[
            VolumeArgs(
                name="config",
                secret=SecretVolumeSourceArgs(
                    secret_name=REDIS_NAME,
                    items=[KeyToPathArgs(key=CONFIG_KEY, path=CONFIG_KEY)],
                    default_mode=0o440,
                ),
            ),
            VolumeArgs(name="data", empty_dir=EmptyDirVolumeSourceArgs(size_limit="256Mi")),
        ],
    )
