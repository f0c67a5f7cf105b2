"""The whole stack: one Kubernetes provider, then a model server per configured model.

This is the composition root: the only module that knows every component, and the one that computes
what crosses components (the gateway peer of the network policies, secret values, the OIDC issuer).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from infra.components.chat_ui import PORT as CHAT_UI_PORT
from infra.components.chat_ui import ChatUi, ChatUiArgs
from infra.components.endpoint_picker import EndpointPicker, EndpointPickerArgs
from infra.components.entry_point import (
    AI_GATEWAY_METRICS_PORT_NAME,
    AI_GATEWAY_METRICS_SELECTOR,
    PROXY_HTTPS_CONTAINER_PORT,
    EntryPoint,
    EntryPointArgs,
    InterceptorBackend,
    RouteTarget,
    UiRoute,
    base_url,
    gateway_peer,
)
from infra.components.keda import Keda, KedaArgs
from infra.components.labels import endpoint_picker_selector
from infra.components.log_store import LogStore, LogStoreArgs
from infra.components.model_server import ModelServer, ModelServerArgs, ServedVersion
from infra.components.monitoring import MonitoringStack, MonitoringStackArgs, ScrapeTarget, prometheus_query_url
from infra.components.priority_classes import PriorityClasses
from infra.components.rate_limit_store import RateLimitStore, RateLimitStoreArgs, redis_url
from infra.config.chat_ui import CHAT_UI_RESOURCE, client_key
from infra.config.cluster import AksCluster
from infra.config.entry_point import ENTRY_POINT_RESOURCE
from infra.config.http_add_on import INTERCEPTOR_PROXY_PORT, INTERCEPTOR_PROXY_SERVICE, interceptor_host
from infra.config.inference_pool import picker_name, pool_name
from infra.config.model import ModelConfig
from infra.config.objects import CHAT_UI_NAME, CHAT_UI_TLS_SECRET, checks_api_keys
from infra.config.stack import StackConfig
from infra.config.versions import workload_name
from infra.engines import engine_for
from infra.engines.base import EngineSpec


def deploy(config: StackConfig) -> dict[str, ModelServer]:
    """Declare every resource of the stack. This is the program, for `pulumi up` and the offline plan."""
    oidc_issuer: pulumi.Input[str] | None = config.secret_store.oidc_issuer_url
    if isinstance(config.cluster, AksCluster):
        from infra.components.aks.platform import deploy_aks

        network = config.network
        aks = deploy_aks(
            config.cluster,
            protect=config.protect,
            service_monitor=config.monitoring.mode != "none",
            fqdn_policies=network.policy_engine == "cilium" and network.model_download == "allow",
            vertical_pod_autoscaler=any(model.vpa.enabled for model in config.models),
        )
        provider = aks.provider
        oidc_issuer = oidc_issuer or aks.cluster.oidc_issuer_url
    else:
        provider = k8s.Provider(
            "kubernetes",
            context=config.cluster.context,
            # Server-side apply: field ownership is tracked by the API server, as kubectl and GitOps tools do.
            enable_server_side_apply=True,
        )
    # Every pod template names one of the stack's PriorityClasses: they exist before any workload.
    priority_classes = PriorityClasses("priority", opts=pulumi.ResourceOptions(provider=provider))
    on_cluster = pulumi.ResourceOptions(provider=provider, depends_on=[priority_classes])
    # Offline, a secret known only by its ciphertext is a placeholder; either way a Pulumi secret.
    secrets = {name: pulumi.Output.secret(value.plaintext_or_placeholder) for name, value in config.secrets.items()}
    revisions = {model.name: _served_versions(config, model) for model in config.models}
    # A versioned model's shared objects (namespace, secrets, policies) follow its stable revision's engine.
    engines = {
        model.name: revisions[model.name][0].engine if revisions[model.name] else engine_for(model, config)
        for model in config.models
    }
    entry = config.entry_point
    servers: dict[str, ModelServer] = {}
    for model in config.models:
        servers[model.name] = ModelServer(
            model.name,
            ModelServerArgs(
                model=model,
                engine=engines[model.name],
                network=config.network,
                monitoring_namespace=config.monitoring.namespace,
                secret_store=config.secret_store,
                protect=config.protect,
                labels=config.labels,
                gateway_peer=gateway_peer(entry) if entry.exposes(model.name) else None,
                secrets=secrets,
                prometheus_url=prometheus_query_url(config.monitoring),
                oidc_issuer=oidc_issuer,
                gpu_node_label=config.gpu_node_label,
                gpu_resource=config.gpu_resource(model),
                # The server checks the gateway's keys too, from a Secret in its own namespace.
                api_keys=secrets[entry.api_keys] if entry.api_keys and checks_api_keys(entry, model) else None,
                existing_api_key_secret=entry.existing_api_key_secret if checks_api_keys(entry, model) else None,
                versions=revisions[model.name],
                keda_namespace=config.keda.namespace,
            ),
            opts=on_cluster,
        )
    pickers = {
        model.name: _endpoint_picker(config, model, engines[model.name], servers[model.name], on_cluster)
        for model in config.models
        if model.inference_pool.enabled
    }
    keda = None
    if config.keda.install:
        keda = Keda(
            "keda",
            KedaArgs(
                namespace=config.keda.namespace, labels=config.labels, http_add_on=config.keda.http_add_on.install
            ),
            opts=on_cluster,
        )
    gateway_metrics: k8s.core.v1.Service | None = None
    if entry.enabled:
        quotas = entry.quotas
        entry_point = EntryPoint(
            ENTRY_POINT_RESOURCE,
            EntryPointArgs(
                config=entry,
                routes=[
                    RouteTarget(
                        model=model.name,
                        namespace=model.k8s_namespace,
                        service=model.name,
                        port=engines[model.name].port,
                        api_base_path=engines[model.name].api_base_path,
                        depends_on=(
                            servers[model.name].namespace,
                            *_present(pickers.get(model.name)),
                            # Requests go to a Deployment once it is ready (Pulumi awaits it): a revision added, or
                            # the model's own objects back after a rollout (docs/canary.md).
                            *[version.deployment for version in servers[model.name].versions],
                            *((keda,) if keda is not None and model.scales_to_zero else ()),
                        ),
                        inference_pool=pool_name(model.name) if model.name in pickers else None,
                        weighted_services=[
                            (workload_name(model.name, served.name), served.weight) for served in revisions[model.name]
                        ],
                        interceptor=InterceptorBackend(
                            namespace=config.keda.namespace,
                            service=INTERCEPTOR_PROXY_SERVICE,
                            port=INTERCEPTOR_PROXY_PORT,
                            host=interceptor_host(model.name, model.k8s_namespace),
                        )
                        if model.scales_to_zero
                        else None,
                        credential_secret=_credential_secret(servers[model.name]),
                        served_name=model.api_model_name,
                    )
                    for model in config.models
                    if entry.exposes(model.name)
                ],
                api_keys=secrets[entry.api_keys] if entry.api_keys else None,
                labels=config.labels,
                # The clients' own keys go on to the servers that check them; a one-key server gets its own instead.
                forward_api_key=any(
                    server.api_keys is not None and server.api_keys.wiring.credential_secret is None
                    for server in servers.values()
                ),
                ui=_chat_ui(config, secrets, on_cluster) if config.chat_ui.enabled else None,
                redis_url=redis_url(quotas.redis.namespace) if quotas is not None else None,
            ),
            opts=on_cluster,
        )
        gateway_metrics = entry_point.ai_gateway_metrics
        if quotas is not None:
            RateLimitStore(
                "rate-limit-store",
                RateLimitStoreArgs(
                    settings=quotas.redis,
                    client_namespace=entry.controller_namespace,
                    password=secrets[quotas.redis.password],
                    labels=config.labels,
                    client_depends_on=_present(entry_point.controller_namespace),
                ),
                opts=on_cluster,
            )
    if config.monitoring.mode != "none":
        _monitoring(config, engines, servers, secrets, on_cluster, gateway_metrics)
    pulumi.export("models", {name: server.service.metadata.name for name, server in servers.items()})
    return servers


def _served_versions(config: StackConfig, model: ModelConfig) -> list[ServedVersion]:
    """The revisions of a canary rollout, stable first (none for a model without ``versions``)."""
    if model.versions is None:
        return []
    canary_cache = model.canary_has_own_cache
    revisions = []
    for track, version in model.versions.by_track().items():
        served = model.revision(version)
        engine = engine_for(served, config)
        own = canary_cache and track == "canary"
        revisions.append(ServedVersion(version.name, track, served, engine, version.weight, own_cache=own))
    return revisions


def _credential_secret(server: ModelServer) -> str | None:
    """The Secret whose key the entry point sends to the server, when it accepts one key of its own."""
    return server.api_keys.wiring.credential_secret if server.api_keys is not None else None


def _present(resource: pulumi.Resource | None) -> tuple[pulumi.Resource, ...]:
    return (resource,) if resource is not None else ()


def _endpoint_picker(
    config: StackConfig, model: ModelConfig, engine: EngineSpec, server: ModelServer, opts: pulumi.ResourceOptions
) -> EndpointPicker:
    """The model's InferencePool and endpoint picker, in the model's namespace (validated: the model is routed)."""
    return EndpointPicker(
        picker_name(model.name),
        EndpointPickerArgs(
            model=model.name,
            namespace=model.k8s_namespace,
            settings=model.inference_pool,
            pod_selector=server.labels.selector,
            target_port=engine.port,
            metrics_port=engine.metrics_port or engine.port,
            gateway_peer=gateway_peer(config.entry_point),
            monitoring_namespace=config.monitoring.namespace if config.monitoring.mode != "none" else None,
            labels=config.labels,
            depends_on=(server.namespace,),
        ),
        opts=opts,
    )


def _chat_ui(config: StackConfig, secrets: Mapping[str, pulumi.Output[str]], opts: pulumi.ResourceOptions) -> UiRoute:
    """The chat UI, calling the models through the entry point; returns its route for the entry point."""
    chat, entry = config.chat_ui, config.entry_point
    assert chat.hostname is not None and entry.hostname is not None and chat.session_secret is not None  # validated
    api_key: pulumi.Output[str] | None = None
    if chat.api_key_client is not None and entry.api_keys is not None:
        client = chat.api_key_client
        api_key = secrets[entry.api_keys].apply(lambda keys: client_key(keys, client))
    elif chat.api_key is not None:
        api_key = secrets[chat.api_key]
    ui = ChatUi(
        CHAT_UI_RESOURCE,
        ChatUiArgs(
            config=chat,
            # With quotas one base URL serves every model (the UI lists them from its /models).
            base_urls=list(
                dict.fromkeys(
                    base_url(entry.hostname, model.name, entry.quotas is not None)
                    for model in config.models
                    if entry.exposes(model.name) and chat.offers(model.name)
                )
            ),
            session_secret=secrets[chat.session_secret],
            api_key=api_key,
            gateway_peer=gateway_peer(entry),
            gateway_port=PROXY_HTTPS_CONTAINER_PORT,
            protect=config.protect,
            labels=config.labels,
        ),
        opts=opts,
    )
    # Without a TLS source of its own, the UI's certificate comes from the entry point's issuer (validated).
    tls = chat.tls
    issuer = tls.issuer_ref if tls is not None else entry.tls.issuer_ref if entry.tls is not None else None
    return UiRoute(
        hostname=chat.hostname,
        namespace=chat.namespace,
        service=CHAT_UI_NAME,
        port=CHAT_UI_PORT,
        tls_secret=tls.secret_name if tls is not None and tls.secret_name else CHAT_UI_TLS_SECRET,
        issuer_ref=issuer if tls is None or tls.secret_name is None else None,
        depends_on=(ui.namespace,),
    )


def _monitoring(
    config: StackConfig,
    engines: Mapping[str, EngineSpec],
    servers: Mapping[str, ModelServer],
    secrets: Mapping[str, pulumi.Output[str]],
    opts: pulumi.ResourceOptions,
    gateway_metrics: k8s.core.v1.Service | None = None,
) -> MonitoringStack:
    from infra.cost.replica import replica_hourly_cost
    from infra.monitoring import MonitoredModel, render_rules
    from infra.monitoring.dashboards import render_dashboards

    monitored = [MonitoredModel.from_config(model, replica_hourly_cost(config, model)) for model in config.models]
    logs = config.monitoring.collects_logs
    targets = [
        ScrapeTarget(
            model=model.name,
            namespace=servers[model.name].namespace.metadata.name,
            selector=servers[model.name].labels.selector,
            port_name=engine.metrics_port_name or engine.port_name,
            path=engine.metrics_path,
            bearer_secret=keys.wiring.scrape_credentials if (keys := servers[model.name].api_keys) else None,
            versioned=model.versions is not None,
        )
        for model in config.models
        if (engine := engines[model.name]).metrics_path is not None
    ] + [
        # The endpoint pickers' own metrics (pool readiness, scheduling latency and decisions).
        ScrapeTarget(
            model=picker_name(model.name),
            namespace=servers[model.name].namespace.metadata.name,
            selector=endpoint_picker_selector(model.name),
            port_name="metrics",
            path="/metrics",
        )
        for model in config.models
        if model.inference_pool.enabled
    ]
    if gateway_metrics is not None:
        # Envoy AI Gateway's token usage per client, from the proxies' sidecar (docs/quotas.md).
        targets.append(
            ScrapeTarget(
                model="ai-gateway",
                namespace=gateway_metrics.metadata.namespace,
                selector=AI_GATEWAY_METRICS_SELECTOR,
                port_name=AI_GATEWAY_METRICS_PORT_NAME,
                path="/metrics",
            )
        )
    stack = MonitoringStack(
        "monitoring",
        MonitoringStackArgs(
            config=config.monitoring,
            targets=targets,
            rules=render_rules(monitored, config.monitoring.alerts, logs=logs),
            dashboards=render_dashboards(monitored, logs=logs, quotas=gateway_metrics is not None),
            secrets=secrets,
            labels=config.labels,
        ),
        opts=opts,
    )
    if logs:
        _log_store(config, stack, opts)
    return stack


def _log_store(config: StackConfig, monitoring: MonitoringStack, opts: pulumi.ResourceOptions) -> LogStore:
    """Loki and its collector in the monitoring namespace, reading the models' and the gateway proxies' pods."""
    entry = config.entry_point
    namespaces = [model.k8s_namespace for model in config.models]
    if entry.enabled:
        namespaces.append(entry.proxy_namespace)
    # The namespace first, and the chart's CRDs for the collector's ServiceMonitor.
    installed = [r for r in (monitoring.namespace, monitoring.release) if r is not None]
    return LogStore(
        "logs",
        LogStoreArgs(
            config=config.monitoring.logs,
            namespace=config.monitoring.namespace,
            namespaces=namespaces,
            labels=config.labels,
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=installed)),
    )
