"""The stack's HTTPS entry point: Gateway API objects served by Envoy Gateway, API keys checked at the edge.

Request path: client → Envoy proxy Service (created by the Envoy Gateway controller from the
``EnvoyProxy`` below) → HTTPS listener of the ``Gateway`` (TLS terminated) → ``SecurityPolicy``
(API key from ``Authorization: Bearer …``) → ``HTTPRoute`` in the model's namespace
(``/models/<model>/v1`` rewritten to ``/v1``) → the model's ClusterIP Service. See ``docs/entry-point.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import ServicePortArgs, ServiceSpecArgs
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.components.labels import AZURE_INTERNAL_LB, MANAGED_BY, NAMESPACE_NAME_LABEL, PART_OF, PUBLIC_EXPOSURE
from infra.components.pod_security import restricted_namespace
from infra.config import priority
from infra.config.entry_point import PROXY_CONFIG_CHILD, EntryPointConfig, IssuerRef, keys_of_secret
from infra.config.objects import ENTRY_POINT_API_KEY_SECRET, SERVER_KEY_FILTER_SUFFIX
from infra.config.quotas import REDIS_NAME, REDIS_PASSWORD_KEY
from infra.gateway.ai_gateway import (
    AI_GATEWAY_API,
    AI_GATEWAY_GROUP,
    ai_route_spec,
    authorization,
    backend_spec,
    budget_exceeded_response,
    server_key_policy_spec,
    service_backend_spec,
    token_budget_rules,
)

#: The Envoy Gateway Helm chart (an OCI artifact), installed at ``EntryPointConfig.controller_version``.
ENVOY_GATEWAY_CHART = "oci://docker.io/envoyproxy/gateway-helm"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
ENVOY_GATEWAY_GROUP = "gateway.envoyproxy.io"
GATEWAY_NAME = "slm-deploy"
LISTENER = "https"
PROXY_CONFIG_NAME = "slm-deploy-proxy"
#: The ReferenceGrant, in the HTTP add-on's namespace, that lets model routes name the interceptor's Service.
INTERCEPTOR_GRANT = "slm-deploy-model-routes"
#: Clients send ``Authorization: Bearer <key>`` (the OpenAI clients do); Envoy's api_key_auth filter
#: strips the ``Bearer `` prefix from a header value before comparing keys.
API_KEY_HEADER = "authorization"
#: The authenticated client's name, set by the proxy for the model server (a client cannot forge it).
CLIENT_ID_HEADER = "x-slm-client"
#: The Envoy AI Gateway controller (its Helm chart's default release in ``envoy-ai-gateway-system``): Envoy Gateway
#: calls it as extension server (ai-gateway manifests/envoy-gateway-config/config.yaml).
AI_GATEWAY_CONTROLLER_HOST = "ai-gateway-controller.envoy-ai-gateway-system.svc.cluster.local"
AI_GATEWAY_CONTROLLER_PORT = 1063
#: Envoy AI Gateway's filter (a sidecar of each proxy pod) serves Prometheus metrics on this port; a headless
#: Service selects the proxies there for a ServiceMonitor (docs/quotas.md).
AI_GATEWAY_METRICS_PORT = 1064
AI_GATEWAY_METRICS_PORT_NAME = "aigw-metrics"
AI_GATEWAY_METRICS_SELECTOR = {"app.kubernetes.io/name": "slm-ai-gateway-metrics"}
#: UID/GID of the distroless Envoy image's non-root user.
PROXY_UID = 65532
#: The listener of a browser application (the chat UI): users log in to the application, so no API key here.
UI_LISTENER = "chat"
#: The port the proxy pods listen on for the HTTPS listeners (443): Envoy Gateway adds 10000 to ports below 1024
#: so that Envoy binds without privileges (envoyproxy/gateway#4981). Network policies see this port.
PROXY_HTTPS_CONTAINER_PORT = 10443


@dataclass(frozen=True)
class RouteTarget:
    """One model behind the entry point: where its OpenAI API is served inside the cluster."""

    #: The model's config name; clients use ``https://<hostname>/models/<model>/v1``.
    model: str
    namespace: str
    #: The model's ClusterIP Service and its API port.
    service: str
    port: int
    #: Where the engine serves the OpenAI API.
    api_base_path: str = "/v1"
    #: Resources the route must wait for (the model's Namespace, so the route's namespace exists).
    depends_on: Sequence[pulumi.Resource] = ()
    #: The model's InferencePool (same namespace), when its endpoint picker chooses the pod instead of the Service.
    inference_pool: str | None = None
    #: A canary rollout: each revision's Service and its percent of the requests (instead of ``service``).
    weighted_services: Sequence[tuple[str, int]] = ()
    #: The KEDA HTTP add-on's interceptor, when the model scales to zero: the route sends its requests there.
    interceptor: InterceptorBackend | None = None
    #: A Secret (same namespace) whose ``credential`` the proxy sends in place of the client's key: the model's own
    #: key, for a server that accepts one key only (vLLM). The client's key is checked first, at the Gateway.
    credential_secret: str | None = None
    #: The name the engine serves the model as (the request's ``model``): with quotas, the gateway routes by it.
    served_name: str | None = None


@dataclass(frozen=True)
class InterceptorBackend:
    """Where a scaled-to-zero model's route sends requests: the HTTP add-on's interceptor, which holds them while a
    replica starts, then forwards them to the model's Service. It routes by ``Host``, so the route rewrites it."""

    namespace: str
    service: str
    port: int
    #: The Host the model's HTTPScaledObject lists (:func:`infra.config.http_add_on.interceptor_host`).
    host: str


@dataclass(frozen=True)
class UiRoute:
    """A browser application (the chat UI) on its own host name: its own HTTPS listener and route."""

    hostname: str
    namespace: str
    #: The application's ClusterIP Service and port.
    service: str
    port: int
    #: The TLS Secret the listener serves, in the entry point's namespace.
    tls_secret: str
    #: When set, a cert-manager Certificate for the host name fills ``tls_secret``.
    issuer_ref: IssuerRef | None = None
    #: Resources the route must wait for (the application's Namespace).
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass
class EntryPointArgs:
    config: EntryPointConfig
    routes: Sequence[RouteTarget]
    #: The Pulumi secret named by ``config.api_keys`` (a JSON object of client name to key); ``None`` when unset.
    api_keys: pulumi.Input[str] | None = None
    #: Extra labels on every object (the stack's labels).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Forward the client's key to the models (some routed server checks keys too); otherwise it is removed.
    forward_api_key: bool = False
    #: The chat UI, when the stack has one: a second listener, without the API-key check.
    ui: UiRoute | None = None
    #: With ``config.quotas``: host:port of the rate limit's Redis, for the controller's values (installController).
    redis_url: str | None = None


def proxy_pod_labels(gateway_namespace: str, gateway_name: str = GATEWAY_NAME) -> dict[str, str]:
    """The labels Envoy Gateway puts on the proxy pods of one Gateway (the pods that call the models)."""
    return {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": gateway_name,
        "gateway.envoyproxy.io/owning-gateway-namespace": gateway_namespace,
    }


def base_url(hostname: str, model: str, quotas: bool = False) -> str:
    """The OpenAI ``base_url`` of a routed model (its route rewrites the prefix to the engine's API path).

    With quotas every model shares ``https://<hostname>/v1``: the AI Gateway routes by the request's ``model``.
    """
    return f"https://{hostname}/v1" if quotas else f"https://{hostname}/models/{model}/v1"


def gateway_peer(config: EntryPointConfig) -> tuple[str, dict[str, str]]:
    """(namespace, pod labels) of the proxies that forward requests to the models, for network policies."""
    return config.proxy_namespace, proxy_pod_labels(config.namespace)


class EntryPoint(pulumi.ComponentResource):
    """One HTTPS entry point for every model. Children are exposed as attributes as an escape hatch."""

    namespace: k8s.core.v1.Namespace
    controller_namespace: k8s.core.v1.Namespace | None
    controller: k8s.helm.v3.Release | None
    gateway_class: k8s.apiextensions.CustomResource | None
    proxy_config: k8s.apiextensions.CustomResource
    certificate: k8s.apiextensions.CustomResource | None
    gateway: k8s.apiextensions.CustomResource
    api_key_secret: k8s.core.v1.Secret | None
    security_policy: k8s.apiextensions.CustomResource | None
    routes: dict[str, k8s.apiextensions.CustomResource]
    #: ReferenceGrants by the interceptor's namespace (models that scale to zero).
    interceptor_grants: dict[str, k8s.apiextensions.CustomResource]
    #: Per model whose server accepts one key: the HTTPRouteFilter that sends it (without quotas), or the AI
    #: Gateway's BackendSecurityPolicy that does (with quotas).
    credential_filters: dict[str, k8s.apiextensions.CustomResource]
    server_key_policies: dict[str, k8s.apiextensions.CustomResource]
    #: With quotas: each model's Envoy Gateway Backend and AIServiceBackend (none for a model behind an
    #: InferencePool), and the Gateway's token-budget BackendTrafficPolicy (when any client has a budget).
    backends: dict[str, k8s.apiextensions.CustomResource]
    service_backends: dict[str, k8s.apiextensions.CustomResource]
    token_budgets: k8s.apiextensions.CustomResource | None
    #: With quotas: the headless Service over the proxies' AI Gateway metrics port (for a ServiceMonitor).
    ai_gateway_metrics: k8s.core.v1.Service | None
    #: The chat UI's certificate (when issued by cert-manager) and route, when the stack has a UI.
    ui_certificate: k8s.apiextensions.CustomResource | None
    ui_route: k8s.apiextensions.CustomResource | None
    #: (namespace, pod labels) of the Envoy proxy pods that call the models.
    gateway_peer: tuple[str, dict[str, str]]
    #: The OpenAI ``base_url`` of each routed model.
    base_urls: dict[str, str]

    def __init__(self, name: str, args: EntryPointArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:network:EntryPoint", name, None, opts)
        config = args.config
        if not config.enabled or config.hostname is None or config.tls is None:
            raise ValueError("EntryPoint needs an enabled entryPoint config with hostname and tls")
        if not args.routes:
            raise ValueError("EntryPoint needs at least one model route")
        if config.api_keys is not None and args.api_keys is None:
            raise ValueError(f"entryPoint.apiKeys names secret '{config.api_keys}', but no value was passed")
        hostname, tls = config.hostname, config.tls
        ns = config.namespace
        self.labels = {
            **dict(args.labels),
            "app.kubernetes.io/name": "slm-entry-point",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/version": config.controller_version,
            "app.kubernetes.io/component": "entry-point",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }
        self.gateway_peer = gateway_peer(config)
        quotas = config.quotas
        self.base_urls = {route.model: base_url(hostname, route.model, quotas is not None) for route in args.routes}

        def meta(object_name: str, namespace: str | None = ns, **extra: Any) -> ObjectMetaArgs:
            return ObjectMetaArgs(name=object_name, namespace=namespace, labels=self.labels, **extra)

        self.namespace = restricted_namespace(
            f"{name}-namespace", ns, self.labels, opts=pulumi.ResourceOptions(parent=self)
        )

        # The controller first: its chart brings the Gateway API and Envoy Gateway CRDs.
        self.controller_namespace = None
        self.controller = None
        self.gateway_class = None
        crds: list[pulumi.Resource] = []
        if config.install_controller:
            self.controller_namespace = restricted_namespace(
                f"{name}-controller-namespace",
                config.controller_namespace,
                self.labels,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.controller = k8s.helm.v3.Release(
                f"{name}-controller",
                k8s.helm.v3.ReleaseArgs(
                    name="envoy-gateway",
                    chart=ENVOY_GATEWAY_CHART,
                    version=config.controller_version,
                    namespace=config.controller_namespace,
                    create_namespace=False,
                    atomic=True,
                    cleanup_on_fail=True,
                    max_history=10,
                    timeout=600,
                    values=_controller_values(args.redis_url),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.controller_namespace]),
            )
            crds = [self.controller]
            self.gateway_class = k8s.apiextensions.CustomResource(
                f"{name}-gateway-class",
                api_version=f"{GATEWAY_API_GROUP}/v1",
                kind="GatewayClass",
                metadata=meta(config.gateway_class_name, namespace=None),
                spec={
                    "controllerName": CONTROLLER_NAME,
                    "description": "Envoy Gateway, installed by slm-deploy for its entry point",
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.controller_namespace, *crds]),
            )
            crds.append(self.gateway_class)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *crds])

        self.proxy_config = k8s.apiextensions.CustomResource(
            f"{name}-{PROXY_CONFIG_CHILD}",
            api_version=f"{ENVOY_GATEWAY_GROUP}/v1alpha1",
            kind="EnvoyProxy",
            metadata=meta(PROXY_CONFIG_NAME),
            spec=_proxy_spec(config, self.labels),
            opts=in_ns,
        )

        self.certificate = None
        if tls.issuer_ref is not None:
            self.certificate = k8s.apiextensions.CustomResource(
                f"{name}-certificate",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata=meta(tls.certificate_secret),
                spec=_certificate_spec(tls.certificate_secret, hostname, tls.issuer_ref, self.labels),
                opts=in_ns,
            )

        self.ui_certificate = None
        ui = args.ui
        if ui is not None and ui.issuer_ref is not None:
            self.ui_certificate = k8s.apiextensions.CustomResource(
                f"{name}-ui-certificate",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata=meta(ui.tls_secret),
                spec=_certificate_spec(ui.tls_secret, ui.hostname, ui.issuer_ref, self.labels),
                opts=in_ns,
            )

        exposure_annotations = {PUBLIC_EXPOSURE: "allowed"} if config.exposure == "public" else None
        self.gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version=f"{GATEWAY_API_GROUP}/v1",
            kind="Gateway",
            metadata=meta(GATEWAY_NAME, annotations=exposure_annotations),
            spec={
                "gatewayClassName": config.gateway_class_name,
                "infrastructure": {
                    "parametersRef": {"group": ENVOY_GATEWAY_GROUP, "kind": "EnvoyProxy", "name": PROXY_CONFIG_NAME}
                },
                "listeners": [
                    _listener(
                        LISTENER, hostname, tls.certificate_secret, sorted({route.namespace for route in args.routes})
                    ),
                    *([_listener(UI_LISTENER, ui.hostname, ui.tls_secret, [ui.namespace])] if ui is not None else []),
                ],
            },
            opts=pulumi.ResourceOptions.merge(
                in_ns,
                pulumi.ResourceOptions(
                    depends_on=[self.proxy_config, *_present(self.certificate), *_present(self.ui_certificate)]
                ),
            ),
        )

        # The policies of the API (key check, token budgets) attach to the Gateway: every model route on it is
        # covered. With a chat UI, to the API listener only: the UI's listener serves browsers, which log in to the UI.
        api_listener = [
            {
                "group": GATEWAY_API_GROUP,
                "kind": "Gateway",
                "name": GATEWAY_NAME,
                **({"sectionName": LISTENER} if ui is not None else {}),
            }
        ]
        self.api_key_secret = None
        self.security_policy = None
        key_secret_name = config.existing_api_key_secret or ENTRY_POINT_API_KEY_SECRET
        if args.api_keys is not None:
            # Parsed inside the secret Output: the keys stay a Pulumi secret end to end.
            keys = pulumi.Output.secret(args.api_keys).apply(keys_of_secret)
            self.api_key_secret = k8s.core.v1.Secret(
                f"{name}-api-keys",
                metadata=meta(ENTRY_POINT_API_KEY_SECRET),
                type="Opaque",
                string_data=keys,
                opts=in_ns,
            )
        if args.api_keys is not None or config.existing_api_key_secret:
            self.security_policy = k8s.apiextensions.CustomResource(
                f"{name}-api-key-auth",
                api_version=f"{ENVOY_GATEWAY_GROUP}/v1alpha1",
                kind="SecurityPolicy",
                metadata=meta("api-key-auth"),
                spec={
                    "targetRefs": api_listener,
                    "apiKeyAuth": {
                        "credentialRefs": [{"group": "", "kind": "Secret", "name": key_secret_name}],
                        "extractFrom": [{"headers": [API_KEY_HEADER]}],
                        "forwardClientIDHeader": CLIENT_ID_HEADER,
                        # Kept when a routed server checks keys too (authentication in depth), removed otherwise.
                        "sanitize": not args.forward_api_key,
                    },
                    # Per-client model allow-lists: a client calling another model gets 403 (docs/quotas.md).
                    **(
                        {
                            "authorization": authorization(
                                quotas, CLIENT_ID_HEADER, {r.model: r.served_name or r.model for r in args.routes}
                            )
                        }
                        if quotas is not None
                        else {}
                    ),
                },
                opts=pulumi.ResourceOptions.merge(
                    in_ns, pulumi.ResourceOptions(depends_on=[*_present(self.api_key_secret), self.gateway])
                ),
            )

        self.routes = {}
        self.credential_filters = {}
        self.backends = {}
        self.service_backends = {}
        self.token_budgets = None
        self.server_key_policies = {}
        for route in args.routes:
            # Behind quotas the AI Gateway sends the model's key instead (a BackendSecurityPolicy, in _ai_route).
            if route.credential_secret is not None and quotas is None:
                self.credential_filters[route.model] = k8s.apiextensions.CustomResource(
                    f"{name}-server-key-{route.model}",
                    api_version=f"{ENVOY_GATEWAY_GROUP}/v1alpha1",
                    kind="HTTPRouteFilter",
                    metadata=meta(f"{route.model}{SERVER_KEY_FILTER_SUFFIX}", namespace=route.namespace),
                    spec=_credential_spec(route.credential_secret),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[*route.depends_on]),
                )
            if quotas is not None:
                self._ai_route(name, route, hostname, ns, config.request_timeout, meta)
                continue
            self.routes[route.model] = k8s.apiextensions.CustomResource(
                f"{name}-route-{route.model}",
                api_version=f"{GATEWAY_API_GROUP}/v1",
                kind="HTTPRoute",
                # In the model's namespace, next to its Service: no ReferenceGrant is needed.
                metadata=meta(route.model, namespace=route.namespace),
                spec=_route_spec(route, hostname, ns, config.request_timeout),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[
                        self.gateway,
                        *_present(self.security_policy),
                        *_present(self.credential_filters.get(route.model)),
                        *route.depends_on,
                    ],
                ),
            )

        # A route in a model's namespace may only name the interceptor's Service in KEDA's namespace when a
        # ReferenceGrant there allows it (Gateway API: cross-namespace references are opt-in by the target's owner).
        self.interceptor_grants = {}
        for interceptor_ns, granted in _interceptor_routes(args.routes).items():
            self.interceptor_grants[interceptor_ns] = k8s.apiextensions.CustomResource(
                f"{name}-interceptor-grant-{interceptor_ns}",
                api_version=f"{GATEWAY_API_GROUP}/v1beta1",
                kind="ReferenceGrant",
                metadata=meta(INTERCEPTOR_GRANT, namespace=interceptor_ns),
                spec={
                    "from": [
                        {"group": GATEWAY_API_GROUP, "kind": "HTTPRoute", "namespace": route.namespace}
                        for route in granted
                    ],
                    "to": [{"group": "", "kind": "Service", "name": service} for service in _services(granted)],
                },
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[dep for route in granted for dep in route.depends_on]
                ),
            )

        self.ai_gateway_metrics = None
        if quotas is not None:
            self.ai_gateway_metrics = k8s.core.v1.Service(
                f"{name}-ai-gateway-metrics",
                metadata=ObjectMetaArgs(
                    name="ai-gateway-metrics",
                    namespace=config.proxy_namespace,
                    labels={**self.labels, **AI_GATEWAY_METRICS_SELECTOR},
                ),
                spec=ServiceSpecArgs(
                    type="ClusterIP",
                    cluster_ip="None",
                    selector=proxy_pod_labels(ns),
                    ports=[
                        ServicePortArgs(
                            name=AI_GATEWAY_METRICS_PORT_NAME,
                            port=AI_GATEWAY_METRICS_PORT,
                            target_port=AI_GATEWAY_METRICS_PORT,
                            protocol="TCP",
                        )
                    ],
                ),
                opts=in_ns,
            )
        budgets = token_budget_rules(quotas, CLIENT_ID_HEADER) if quotas is not None else []
        if budgets:
            self.token_budgets = k8s.apiextensions.CustomResource(
                f"{name}-token-budgets",
                api_version=f"{ENVOY_GATEWAY_GROUP}/v1alpha1",
                kind="BackendTrafficPolicy",
                metadata=meta("token-budgets"),
                spec={
                    "targetRefs": api_listener,
                    "rateLimit": {"type": "Global", "global": {"rules": budgets}},
                    # The 429 names the client and the budget it spent (docs/quotas.md).
                    "responseOverride": budget_exceeded_response(CLIENT_ID_HEADER),
                },
                opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[self.gateway])),
            )

        self.ui_route = None
        if ui is not None:
            self.ui_route = k8s.apiextensions.CustomResource(
                f"{name}-route-ui",
                api_version=f"{GATEWAY_API_GROUP}/v1",
                kind="HTTPRoute",
                metadata=meta(ui.service, namespace=ui.namespace),
                spec=_ui_route_spec(ui, ns, config.request_timeout),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway, *ui.depends_on]),
            )

        self.register_outputs(
            {
                "gateway": f"{ns}/{GATEWAY_NAME}",
                "hostname": hostname,
                "exposure": config.exposure,
                "authentication": "api-key" if self.security_policy is not None else "none",
                "quotaClients": sorted(quotas.clients) if quotas is not None else [],
                "baseUrls": self.base_urls,
                **({"chatUrl": f"https://{ui.hostname}/"} if ui is not None else {}),
            }
        )

    def _ai_route(
        self,
        name: str,
        route: RouteTarget,
        hostname: str,
        gateway_namespace: str,
        timeout: str,
        meta: Callable[..., ObjectMetaArgs],
    ) -> None:
        """The model behind the AI Gateway: an AIGatewayRoute (tokens counted), and its backend objects.

        The backend is the model's InferencePool, or per Service (the model's, or each canary revision's with its
        weight) an Envoy Gateway Backend and an AIServiceBackend of the same name.
        """
        opts = pulumi.ResourceOptions(
            parent=self, depends_on=[self.gateway, *_present(self.security_policy), *route.depends_on]
        )
        refs: list[dict[str, Any]] = []
        made: list[pulumi.Resource] = []
        if route.inference_pool is not None:
            refs.append({"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": route.inference_pool})
        services: list[tuple[str, int | None]] = [*route.weighted_services] or [(route.service, None)]
        for service, weight in services if route.inference_pool is None else []:
            self.backends[service] = k8s.apiextensions.CustomResource(
                f"{name}-backend-{service}",
                api_version=f"{ENVOY_GATEWAY_GROUP}/v1alpha1",
                kind="Backend",
                metadata=meta(service, namespace=route.namespace),
                spec=backend_spec(service, route.namespace, route.port),
                opts=opts,
            )
            self.service_backends[service] = k8s.apiextensions.CustomResource(
                f"{name}-service-backend-{service}",
                api_version=AI_GATEWAY_API,
                kind="AIServiceBackend",
                metadata=meta(service, namespace=route.namespace),
                spec=service_backend_spec(service, route.api_base_path),
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.backends[service]])),
            )
            made.append(self.service_backends[service])
            refs.append({"name": service, **({"weight": weight} if weight is not None else {})})
        if route.credential_secret is not None:
            # A server checking a key of its own (vLLM) gets it from the AI Gateway, on every backend of the model.
            targets = (
                [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": route.inference_pool}]
                if route.inference_pool is not None
                else [{"group": AI_GATEWAY_GROUP, "kind": "AIServiceBackend", "name": ref["name"]} for ref in refs]
            )
            self.server_key_policies[route.model] = k8s.apiextensions.CustomResource(
                f"{name}-server-key-{route.model}",
                api_version=AI_GATEWAY_API,
                kind="BackendSecurityPolicy",
                metadata=meta(f"{route.model}{SERVER_KEY_FILTER_SUFFIX}", namespace=route.namespace),
                spec=server_key_policy_spec(targets, route.credential_secret),
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=made)),
            )
            made.append(self.server_key_policies[route.model])
        self.routes[route.model] = k8s.apiextensions.CustomResource(
            f"{name}-route-{route.model}",
            api_version=AI_GATEWAY_API,
            kind="AIGatewayRoute",
            metadata=meta(route.model, namespace=route.namespace),
            spec=ai_route_spec(
                _parent(gateway_namespace, LISTENER), hostname, route.served_name or route.model, refs, timeout
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=made)),
        )


def _present(resource: pulumi.Resource | None) -> list[pulumi.Resource]:
    return [resource] if resource is not None else []


def _controller_values(redis_url: str | None) -> dict[str, Any]:
    """Helm values of the Envoy Gateway chart: proxies run in their Gateway's namespace.

    With quotas (``redis_url``), the settings Envoy AI Gateway asks of Envoy Gateway (its
    manifests/envoy-gateway-config/config.yaml): the Backend API, the AI Gateway controller as extension server
    (translation hook), and the global rate limit's Redis, whose password reaches the rate-limit service as
    ``REDIS_AUTH`` (envoyproxy/ratelimit's setting) from the Redis Secret.
    """
    kubernetes: dict[str, Any] = {"deploy": {"type": "GatewayNamespace"}}
    gateway: dict[str, Any] = {"provider": {"type": "Kubernetes", "kubernetes": kubernetes}}
    if redis_url is not None:
        auth = {
            "name": "REDIS_AUTH",
            "valueFrom": {"secretKeyRef": {"name": REDIS_NAME, "key": REDIS_PASSWORD_KEY}},
        }
        kubernetes["rateLimitDeployment"] = {
            # The budgets are enforced by this service: it keeps running beside the proxies on a full node.
            "pod": {"priorityClassName": priority.SYSTEM.name},
            "patch": {
                "type": "StrategicMerge",
                "value": {"spec": {"template": {"spec": {"containers": [{"name": "envoy-ratelimit", "env": [auth]}]}}}},
            },
        }
        gateway["extensionApis"] = {"enableBackend": True}
        gateway["extensionManager"] = {
            "hooks": {"xdsTranslator": {"post": ["Translation"]}},
            "service": {"fqdn": {"hostname": AI_GATEWAY_CONTROLLER_HOST, "port": AI_GATEWAY_CONTROLLER_PORT}},
        }
        gateway["rateLimit"] = {"backend": {"type": "Redis", "redis": {"url": redis_url}}}
    # The controller at the system priority, like the proxies it programs (infra/config/priority.py): the chart's
    # deployment.priorityClassName (charts/gateway-helm, envoy-gateway-deployment.yaml).
    return {"deployment": {"priorityClassName": priority.SYSTEM.name}, "config": {"envoyGateway": gateway}}


def _service(config: EntryPointConfig) -> dict[str, Any]:
    """The proxy Service the controller creates: ClusterIP, an Azure internal load balancer, or public."""
    if config.exposure == "cluster":
        return {"type": "ClusterIP"}
    if config.exposure == "internal":
        return {"type": "LoadBalancer", "annotations": {AZURE_INTERNAL_LB: "true"}}
    return {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "annotations": {PUBLIC_EXPOSURE: "allowed"}}


def _proxy_spec(config: EntryPointConfig, labels: Mapping[str, str]) -> dict[str, Any]:
    """Hardened Envoy proxy pods (Pod Security Standards restricted) and their Service."""
    seccomp = {"type": "RuntimeDefault"}
    return {
        "provider": {
            "type": "Kubernetes",
            "kubernetes": {
                "envoyDeployment": {
                    "replicas": config.replicas,
                    "pod": {
                        "labels": {"app.kubernetes.io/part-of": labels["app.kubernetes.io/part-of"]},
                        # Every request passes through the proxies: above the model servers behind them.
                        "priorityClassName": priority.SYSTEM.name,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": PROXY_UID,
                            "runAsGroup": PROXY_UID,
                            "fsGroup": PROXY_UID,
                            "seccompProfile": seccomp,
                        },
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": key,
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": proxy_pod_labels(config.namespace)},
                            }
                            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
                        ],
                    },
                    "container": {
                        "securityContext": {
                            "privileged": False,
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True,
                            "runAsUser": PROXY_UID,
                            "runAsGroup": PROXY_UID,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": seccomp,
                        },
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "256Mi"},
                            "limits": {"cpu": "2", "memory": "1Gi"},
                        },
                    },
                },
                "envoyService": _service(config),
            },
        },
    }


def _certificate_spec(secret: str, hostname: str, issuer: IssuerRef, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "secretName": secret,
        "dnsNames": [hostname],
        "issuerRef": {"group": "cert-manager.io", "kind": issuer.kind, "name": issuer.name},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "secretTemplate": {"labels": dict(labels)},
    }


def _listener(listener: str, hostname: str, tls_secret: str, namespaces: list[str]) -> dict[str, Any]:
    """An HTTPS listener (TLS terminated) for one host name; only HTTPRoutes from ``namespaces`` attach."""
    return {
        "name": listener,
        "protocol": "HTTPS",
        "port": 443,
        "hostname": hostname,
        "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": tls_secret}]},
        "allowedRoutes": {
            "kinds": [{"group": GATEWAY_API_GROUP, "kind": "HTTPRoute"}],
            # By the label Kubernetes itself sets on every namespace.
            "namespaces": {
                "from": "Selector",
                "selector": {
                    "matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": namespaces}]
                },
            },
        },
    }


def _parent(gateway_namespace: str, listener: str) -> dict[str, str]:
    return {
        "group": GATEWAY_API_GROUP,
        "kind": "Gateway",
        "namespace": gateway_namespace,
        "name": GATEWAY_NAME,
        "sectionName": listener,
    }


def _ui_route_spec(ui: UiRoute, gateway_namespace: str, timeout: str) -> dict[str, Any]:
    return {
        "parentRefs": [_parent(gateway_namespace, UI_LISTENER)],
        "hostnames": [ui.hostname],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"group": "", "kind": "Service", "name": ui.service, "port": ui.port}],
                # The UI streams the model's answer to the browser: the same limit as the API routes.
                "timeouts": {"request": timeout},
            }
        ],
    }


def _route_spec(route: RouteTarget, hostname: str, gateway_namespace: str, timeout: str) -> dict[str, Any]:
    prefix = f"/models/{route.model}/v1"
    return {
        "parentRefs": [_parent(gateway_namespace, LISTENER)],
        "hostnames": [hostname],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": route.api_base_path},
                            # The interceptor picks the model by Host.
                            **({"hostname": route.interceptor.host} if route.interceptor is not None else {}),
                        },
                    },
                    *(
                        [
                            {
                                "type": "ExtensionRef",
                                "extensionRef": {
                                    "group": ENVOY_GATEWAY_GROUP,
                                    "kind": "HTTPRouteFilter",
                                    "name": f"{route.model}{SERVER_KEY_FILTER_SUFFIX}",
                                },
                            }
                        ]
                        if route.credential_secret is not None
                        else []
                    ),
                ],
                "backendRefs": _backends(route),
                # Streamed completions take long: state the limit rather than inherit a proxy default.
                "timeouts": {"request": timeout},
            }
        ],
    }


def _backends(route: RouteTarget) -> list[dict[str, Any]]:
    """One backend, or each revision's Service with its weight: Gateway API splits a rule's requests in proportion
    to ``weight`` (https://gateway-api.sigs.k8s.io/guides/traffic-splitting; a weight of 0 gets none)."""
    if route.weighted_services:
        return [
            {"group": "", "kind": "Service", "name": service, "port": route.port, "weight": weight}
            for service, weight in route.weighted_services
        ]
    return [_backend(route)]


def _interceptor_routes(routes: Sequence[RouteTarget]) -> dict[str, list[RouteTarget]]:
    """The routes to an interceptor, by the interceptor's namespace."""
    found: dict[str, list[RouteTarget]] = {}
    for route in routes:
        if route.interceptor is not None:
            found.setdefault(route.interceptor.namespace, []).append(route)
    return found


def _services(routes: Sequence[RouteTarget]) -> list[str]:
    return sorted({route.interceptor.service for route in routes if route.interceptor is not None})


def _credential_spec(secret: str) -> dict[str, Any]:
    """Envoy Gateway's credential injection: after the Gateway's key check (Envoy Gateway orders its api_key_auth
    filter before credential_injector: internal/xds/translator/httpfilters.go), the header the model's server
    checks is replaced by the Secret's ``credential`` (``Bearer <the model's key>``)."""
    return {
        "credentialInjection": {
            "header": "Authorization",
            "overwrite": True,
            "credential": {"valueRef": {"group": "", "kind": "Secret", "name": secret}},
        }
    }


def _backend(route: RouteTarget) -> dict[str, Any]:
    """The model's Service, or its InferencePool (the pool's targetPorts say where; no port on the reference), or the
    HTTP add-on's interceptor in front of a model that scales to zero."""
    if route.interceptor is not None:
        target = route.interceptor
        return {
            "group": "",
            "kind": "Service",
            "name": target.service,
            "namespace": target.namespace,
            "port": target.port,
        }
    if route.inference_pool is not None:
        return {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": route.inference_pool}
    return {"group": "", "kind": "Service", "name": route.service, "port": route.port}
