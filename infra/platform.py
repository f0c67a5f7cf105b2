"""The whole stack: one Kubernetes provider, then a model server per configured model.

This is the composition root: the only module that knows every component, and the one that computes
what crosses components (the gateway peer of the network policies, secret values, the OIDC issuer).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from infra.components.entry_point import EntryPoint, EntryPointArgs, RouteTarget, gateway_peer
from infra.components.keda import Keda, KedaArgs
from infra.components.model_server import ModelServer, ModelServerArgs
from infra.components.monitoring import MonitoringStack, MonitoringStackArgs, ScrapeTarget, prometheus_query_url
from infra.config.cluster import AksCluster
from infra.config.entry_point import ENTRY_POINT_RESOURCE
from infra.config.stack import StackConfig
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
    on_cluster = pulumi.ResourceOptions(provider=provider)
    # Offline, a secret known only by its ciphertext is a placeholder; either way a Pulumi secret.
    secrets = {name: pulumi.Output.secret(value.plaintext_or_placeholder) for name, value in config.secrets.items()}
    engines = {model.name: engine_for(model, config) for model in config.models}
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
            ),
            opts=on_cluster,
        )
    if config.monitoring.mode != "none":
        _monitoring(config, engines, servers, secrets, on_cluster)
    if config.keda.install:
        Keda("keda", KedaArgs(namespace=config.keda.namespace, labels=config.labels), opts=on_cluster)
    if entry.enabled:
        EntryPoint(
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
                        depends_on=(servers[model.name].namespace,),
                    )
                    for model in config.models
                    if entry.exposes(model.name)
                ],
                api_keys=secrets[entry.api_keys] if entry.api_keys else None,
                labels=config.labels,
            ),
            opts=on_cluster,
        )
    pulumi.export("models", {name: server.service.metadata.name for name, server in servers.items()})
    return servers


def _monitoring(
    config: StackConfig,
    engines: Mapping[str, EngineSpec],
    servers: Mapping[str, ModelServer],
    secrets: Mapping[str, pulumi.Output[str]],
    opts: pulumi.ResourceOptions,
) -> MonitoringStack:
    from infra.monitoring import MonitoredModel, render_rules
    from infra.monitoring.dashboards import render_dashboards

    monitored = [MonitoredModel.from_config(model) for model in config.models]
    targets = [
        ScrapeTarget(
            model=model.name,
            namespace=servers[model.name].namespace.metadata.name,
            selector=servers[model.name].labels.selector,
            port_name=engine.metrics_port_name or engine.port_name,
            path=engine.metrics_path,
        )
        for model in config.models
        if (engine := engines[model.name]).metrics_path is not None
    ]
    return MonitoringStack(
        "monitoring",
        MonitoringStackArgs(
            config=config.monitoring,
            targets=targets,
            rules=render_rules(monitored, config.monitoring.alerts),
            dashboards=render_dashboards(monitored),
            secrets=secrets,
            labels=config.labels,
        ),
        opts=opts,
    )
