"""A chat page for the models: Open WebUI in its own namespace, reached through the entry point.

Request path: browser → the entry point's ``chat`` listener (TLS, no API key: users log in to the UI) →
HTTPRoute in the UI's namespace → this Service → Open WebUI, which calls each model at
``https://<api host>/models/<model>/v1`` through the gateway's API listener with the UI's own API key, like any
other client. Only the gateway's proxies may connect to the UI, and the UI may connect only to them (and DNS).
See ``docs/chat-ui.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgs, DeploymentStrategyArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    HTTPGetActionArgs,
    PersistentVolumeClaimSpecArgs,
    PersistentVolumeClaimVolumeSourceArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    SecretVolumeSourceArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    TopologySpreadConstraintArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeResourceRequirementsArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)
from pulumi_kubernetes.policy.v1 import PodDisruptionBudgetSpecArgs

from infra.components.labels import KUBE_DNS_LABELS, MANAGED_BY, NAMESPACE_NAME_LABEL, PART_OF
from infra.components.pod_security import container_security_context, pod_security_context, restricted_namespace
from infra.config import priority
from infra.config.chat_ui import ChatUiConfig
from infra.config.objects import CHAT_UI_DATA, CHAT_UI_NAME, CHAT_UI_SECRET

#: Open WebUI's HTTP port (the image's ``PORT``).
PORT = 8080
#: Where Open WebUI keeps its database, uploads and caches (``DATA_DIR``, the image's default): the volume.
DATA_DIR = "/app/backend/data"
#: Open WebUI copies its front end's static files into ``STATIC_DIR`` at every start; the image's default lies
#: in the read-only root filesystem, so it points into an emptyDir instead.
STATIC_DIR = "/var/lib/open-webui/static"
#: Secret files, read by the start command (Open WebUI reads these settings from environment variables only).
SECRETS_DIR = "/etc/slm-chat/secrets"
CA_DIR = "/etc/slm-chat/ca"
SESSION_KEY = "webui-secret-key"
API_KEYS_KEY = "openai-api-keys"
#: Written into the volume once the image's data folder has been copied in.
SEED_MARKER = ".slm-deploy-seeded"


@dataclass
class ChatUiArgs:
    config: ChatUiConfig
    #: The OpenAI base URL of each model the UI offers (the entry point's, so every call passes the gateway).
    base_urls: Sequence[str]
    #: The key that signs login tokens (a Pulumi secret).
    session_secret: pulumi.Input[str]
    #: The UI's own API key (a Pulumi secret); ``None`` when the gateway checks no key.
    api_key: pulumi.Input[str] | None
    #: (namespace, pod labels) of the gateway's proxies: the only pods that call the UI and that it calls.
    gateway_peer: tuple[str, dict[str, str]]
    #: The port the proxies listen on for HTTPS (what a network policy sees after the Service's translation).
    gateway_port: int
    #: Protect the data volume from deletion (prod).
    protect: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)


class ChatUi(pulumi.ComponentResource):
    """Open WebUI for the stack's models. Children are exposed as attributes as an escape hatch."""

    namespace: k8s.core.v1.Namespace
    service_account: k8s.core.v1.ServiceAccount
    secret: k8s.core.v1.Secret
    data: k8s.core.v1.PersistentVolumeClaim
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    disruption_budget: k8s.policy.v1.PodDisruptionBudget
    network_policies: dict[str, k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: ChatUiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:chat:ChatUi", name, None, opts)
        config = args.config
        if not config.enabled or config.hostname is None:
            raise ValueError("ChatUi needs an enabled chatUi config with a hostname")
        if not args.base_urls:
            raise ValueError("ChatUi needs at least one model to offer")
        ns = config.namespace
        self.selector = {"app.kubernetes.io/name": "open-webui", "app.kubernetes.io/instance": CHAT_UI_NAME}
        self.labels = {
            **dict(args.labels),
            **self.selector,
            "app.kubernetes.io/version": config.image.tag,
            "app.kubernetes.io/component": "chat-ui",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }

        def meta(object_name: str) -> ObjectMetaArgs:
            return ObjectMetaArgs(name=object_name, namespace=ns, labels=self.labels)

        self.namespace = restricted_namespace(
            f"{name}-namespace", ns, self.labels, opts=pulumi.ResourceOptions(parent=self)
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])

        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=meta(CHAT_UI_NAME),
            automount_service_account_token=config.hardening.automount_service_account_token,
            opts=in_ns,
        )
        # Built from secret Outputs, so the result is one too: the values never leave Pulumi's secret handling.
        session = pulumi.Output.secret(args.session_secret)
        api_key = pulumi.Output.secret(args.api_key) if args.api_key is not None else None
        values = pulumi.Output.all(session, api_key).apply(
            lambda pair: _secret_data(pair[0], pair[1], len(args.base_urls))
        )
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=meta(CHAT_UI_SECRET),
            type="Opaque",
            string_data=values,
            opts=in_ns,
        )
        self.data = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata=meta(CHAT_UI_DATA),
            spec=PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=config.storage.storage_class,
                resources=VolumeResourceRequirementsArgs(requests={"storage": config.storage.size}),
            ),
            # Users and their chats live here: a prod stack never deletes it by accident.
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(protect=args.protect)),
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta(CHAT_UI_NAME),
            spec=DeploymentSpecArgs(
                # One replica: the SQLite database on a ReadWriteOnce volume has one writer.
                replicas=1,
                selector=LabelSelectorArgs(match_labels=self.selector),
                strategy=DeploymentStrategyArgs(type="Recreate"),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=self.labels),
                    spec=_pod_spec(config, args, self.selector),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, self.secret, self.data]),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(CHAT_UI_NAME),
            spec=ServiceSpecArgs(
                type="ClusterIP",
                selector=self.selector,
                ports=[ServicePortArgs(name="http", port=PORT, target_port="http", protocol="TCP")],
            ),
            opts=in_ns,
        )
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=meta(CHAT_UI_NAME),
            # maxUnavailable: a single replica must not block node drains forever.
            spec=PodDisruptionBudgetSpecArgs(max_unavailable=1, selector=LabelSelectorArgs(match_labels=self.selector)),
            opts=in_ns,
        )
        self.network_policies = _network_policies(name, ns, self.selector, self.labels, args, in_ns)
        self.register_outputs(
            {
                "namespace": ns,
                "url": f"https://{config.hostname}/",
                "service": self.service.metadata.name,
                "networkPolicies": sorted(self.network_policies),
            }
        )


def _secret_data(session: str, api_key: str | None, models: int) -> dict[str, str]:
    """The UI's Secret: the session key, and its API key once per model (Open WebUI pairs keys with base URLs)."""
    data = {SESSION_KEY: session}
    if api_key is not None:
        data[API_KEYS_KEY] = ";".join([api_key] * models)
    return data


def _start_command(with_api_key: bool) -> list[str]:
    """Read the secrets from their files, then start the server directly.

    The image's ``start.sh`` writes a key file and ``server.log`` into the read-only image, so uvicorn is run as
    it does, without those writes. ``read`` (not ``$(…)``, which the kubelet would try to expand) loads each file;
    an empty or missing one stops the start: Open WebUI would sign logins with its well-known default key.
    """
    lines = ["set -eu"]
    for variable, key in [("WEBUI_SECRET_KEY", SESSION_KEY)] + (
        [("OPENAI_API_KEYS", API_KEYS_KEY)] if with_api_key else []
    ):
        # read fails on a last line without a newline, yet sets the variable: what counts is that it is set.
        lines += [f'read -r {variable} < {SECRETS_DIR}/{key} || [ -n "${{{variable}:-}}" ]', f"export {variable}"]
    # Only the gateway's proxies reach the pod (network policy): their X-Forwarded-* headers are trusted.
    lines.append(f"exec uvicorn open_webui.main:app --host 0.0.0.0 --port {PORT} --forwarded-allow-ips '*' --workers 1")
    return ["/bin/sh", "-c", "\n".join(lines)]


def _env(config: ChatUiConfig, base_urls: Sequence[str]) -> list[EnvVarArgs]:
    env = {
        "DATA_DIR": DATA_DIR,
        "STATIC_DIR": STATIC_DIR,
        # An arbitrary UID has no home in the image; uploads and libraries write below HOME.
        "HOME": "/tmp",
        "WEBUI_URL": f"https://{config.hostname}",
        # Served over HTTPS only (the entry point terminates TLS).
        "WEBUI_SESSION_COOKIE_SECURE": "true",
        # New accounts wait for an administrator's approval (Open WebUI's default, stated).
        "DEFAULT_USER_ROLE": "pending",
        "ENABLE_OLLAMA_API": "false",
        "ENABLE_OPENAI_API": "true",
        "OPENAI_API_BASE_URLS": ";".join(base_urls),
        # The stack config stays authoritative: settings are read from the environment at every start, not from
        # the copy Open WebUI would otherwise keep in its database after the first one.
        "ENABLE_PERSISTENT_CONFIG": "false",
        # Egress reaches only the gateway: the embedding model comes from the image (copied into the volume).
        "HF_HUB_OFFLINE": "1",
    }
    if config.ca_config_map is not None:
        env["SSL_CERT_FILE"] = f"{CA_DIR}/ca.crt"
        env["REQUESTS_CA_BUNDLE"] = f"{CA_DIR}/ca.crt"
    return [EnvVarArgs(name=key, value=value) for key, value in sorted(env.items())]


def _pod_spec(config: ChatUiConfig, args: ChatUiArgs, selector: dict[str, str]) -> PodSpecArgs:
    hardening = config.hardening
    volumes = [
        VolumeArgs(name="data", persistent_volume_claim=PersistentVolumeClaimVolumeSourceArgs(claim_name=CHAT_UI_DATA)),
        VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="1Gi")),
        VolumeArgs(name="static", empty_dir=EmptyDirVolumeSourceArgs(size_limit="256Mi")),
        VolumeArgs(name="secrets", secret=SecretVolumeSourceArgs(secret_name=CHAT_UI_SECRET, default_mode=0o440)),
    ]
    mounts = [
        VolumeMountArgs(name="data", mount_path=DATA_DIR),
        VolumeMountArgs(name="tmp", mount_path="/tmp"),
        VolumeMountArgs(name="static", mount_path=STATIC_DIR),
        VolumeMountArgs(name="secrets", mount_path=SECRETS_DIR, read_only=True),
    ]
    if config.ca_config_map is not None:
        volumes.append(
            VolumeArgs(name="ca", config_map=ConfigMapVolumeSourceArgs(name=config.ca_config_map, default_mode=0o444))
        )
        mounts.append(VolumeMountArgs(name="ca", mount_path=CA_DIR, read_only=True))
    amounts = config.resources.as_kubernetes()
    resources = ResourceRequirementsArgs(requests=amounts["requests"], limits=amounts["limits"])
    health = HTTPGetActionArgs(path="/health", port="http")
    # The image ships its data folder (the embedding model's cache among it); the volume hides it, so it is copied
    # in before the first start, as Open WebUI's own chart does. Once only (a marker file), so users' data is never
    # overwritten; not with `cp -n`, whose exit status for skipped files differs between coreutils releases.
    seed = ContainerArgs(
        name="copy-image-data",
        image=config.image.reference,
        image_pull_policy="IfNotPresent",
        command=[
            "/bin/sh",
            "-c",
            f"[ -e /seed/{SEED_MARKER} ] || {{ cp -R {DATA_DIR}/. /seed/ && touch /seed/{SEED_MARKER}; }}",
        ],
        resources=resources,
        security_context=container_security_context(hardening),
        volume_mounts=[VolumeMountArgs(name="data", mount_path="/seed")],
    )
    server = ContainerArgs(
        name="open-webui",
        image=config.image.reference,
        image_pull_policy="IfNotPresent",
        command=_start_command(args.api_key is not None),
        env=_env(config, args.base_urls),
        ports=[ContainerPortArgs(name="http", container_port=PORT, protocol="TCP")],
        resources=resources,
        security_context=container_security_context(hardening),
        # Loading the embedding model and migrating the database take a while on the first start.
        startup_probe=ProbeArgs(http_get=health, period_seconds=10, timeout_seconds=5, failure_threshold=30),
        readiness_probe=ProbeArgs(http_get=health, period_seconds=10, timeout_seconds=5, failure_threshold=3),
        liveness_probe=ProbeArgs(http_get=health, period_seconds=15, timeout_seconds=5, failure_threshold=4),
        volume_mounts=mounts,
    )
    return PodSpecArgs(
        # Serves people, as the model servers do: their tier (infra/config/priority.py).
        priority_class_name=priority.SERVING.name,
        service_account_name=CHAT_UI_NAME,
        automount_service_account_token=hardening.automount_service_account_token,
        enable_service_links=False,
        security_context=pod_security_context(hardening),
        init_containers=[seed],
        containers=[server],
        volumes=volumes,
        topology_spread_constraints=[
            TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key=key,
                when_unsatisfiable="ScheduleAnyway",
                label_selector=LabelSelectorArgs(match_labels=selector),
            )
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
    )


def _network_policies(
    name: str,
    namespace: str,
    selector: dict[str, str],
    labels: dict[str, str],
    args: ChatUiArgs,
    opts: pulumi.ResourceOptions,
) -> dict[str, k8s.networking.v1.NetworkPolicy]:
    """Deny everything in the namespace, then: DNS, the gateway's proxies in (to the UI) and out (to the models)."""
    gateway_namespace, proxy_labels = args.gateway_peer
    proxies = NetworkPolicyPeerArgs(
        namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: gateway_namespace}),
        pod_selector=LabelSelectorArgs(match_labels=proxy_labels),
    )
    dns = NetworkPolicyPeerArgs(
        namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: "kube-system"}),
        pod_selector=LabelSelectorArgs(match_labels=KUBE_DNS_LABELS),
    )
    ui = LabelSelectorArgs(match_labels=selector)
    specs = {
        "default-deny": NetworkPolicySpecArgs(pod_selector=LabelSelectorArgs(), policy_types=["Ingress", "Egress"]),
        "allow-dns-egress": NetworkPolicySpecArgs(
            pod_selector=ui,
            policy_types=["Egress"],
            egress=[
                NetworkPolicyEgressRuleArgs(
                    to=[dns], ports=[NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")]
                )
            ],
        ),
        "allow-entry-point-ingress": NetworkPolicySpecArgs(
            pod_selector=ui,
            policy_types=["Ingress"],
            ingress=[
                NetworkPolicyIngressRuleArgs(from_=[proxies], ports=[NetworkPolicyPortArgs(protocol="TCP", port=PORT)])
            ],
        ),
        # The models, through the gateway: the API host name resolves to the proxies' load balancer or Service,
        # which kube-proxy (or Cilium) translates to a proxy pod before the policy is applied.
        "allow-gateway-egress": NetworkPolicySpecArgs(
            pod_selector=ui,
            policy_types=["Egress"],
            egress=[
                NetworkPolicyEgressRuleArgs(
                    to=[proxies], ports=[NetworkPolicyPortArgs(protocol="TCP", port=args.gateway_port)]
                )
            ],
        ),
    }
    return {
        policy: k8s.networking.v1.NetworkPolicy(
            f"{name}-{policy}",
            metadata=ObjectMetaArgs(name=policy, namespace=namespace, labels=labels),
            spec=spec,
            opts=opts,
        )
        for policy, spec in specs.items()
    }
