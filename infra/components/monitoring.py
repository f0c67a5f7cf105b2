"""Prometheus, Grafana and Alertmanager for the stack, and the scrape, rule and dashboard objects.

``mode: kube-prometheus-stack`` installs the chart (pinned) with selectors that pick up our
ServiceMonitors, PrometheusRules and AlertmanagerConfigs whatever their labels (the chart's default
only sees objects labelled ``release: <release>``). ``mode: existing`` creates only the scrape, rule
and dashboard objects, for a Prometheus the cluster already runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.helm.v3 import Release, RepositoryOptsArgs
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.components.pod_security import restricted_namespace
from infra.config import priority
from infra.config.monitoring import AlertmanagerReceiver, MonitoringConfig
from infra.config.objects import RECEIVER_SECRET
from infra.config.versions import METRIC_VERSION_LABEL
from infra.monitoring.logs import LOKI_DATASOURCE_UID, loki_url
from policies.lib.canary import VERSION_LABEL

CHART = "kube-prometheus-stack"
REPOSITORY = "https://prometheus-community.github.io/helm-charts"
CHART_VERSION = "85.1.2"
RELEASE_NAME = "kube-prometheus-stack"
#: The chart's Prometheus service (release name + "-prometheus").
PROMETHEUS_SERVICE = f"{RELEASE_NAME}-prometheus"
#: Keys of the Grafana admin Secret (monitoring.grafanaAdminSecret), as the chart reads them.
GRAFANA_ADMIN_USER_KEY = "admin-user"
GRAFANA_ADMIN_PASSWORD_KEY = "admin-password"
DASHBOARD_LABEL = "grafana_dashboard"
#: Objects the chart's selectors match (we set them to match this label instead of `release`).
SELECTOR_LABEL = "slm-deploy.io/monitoring"


def prometheus_query_url(config: MonitoringConfig) -> str:
    """Where KEDA (and people) query Prometheus."""
    if config.prometheus_url:
        return config.prometheus_url
    return f"http://{PROMETHEUS_SERVICE}.{config.namespace}.svc:9090"


@dataclass(frozen=True)
class ScrapeTarget:
    """One model's metrics endpoint, from its engine adapter."""

    model: str
    namespace: pulumi.Input[str]
    selector: dict[str, str]
    port_name: str
    path: str
    #: (Secret name, data key) in the target's namespace whose value Prometheus sends as a bearer token, when the
    #: metrics endpoint asks for an API key (llama-server with keys).
    bearer_secret: tuple[str, str] | None = None
    #: The model runs revisions (a canary rollout): the scrape copies the version label of each revision's Service onto
    #: its series as ``model_version``, which the comparison alert and panel group by (docs/canary.md).
    versioned: bool = False


@dataclass
class MonitoringStackArgs:
    config: MonitoringConfig
    targets: Sequence[ScrapeTarget]
    #: PrometheusRule ``spec`` (groups), rendered from templates/monitoring.
    rules: dict[str, Any]
    #: Dashboard file name → JSON text.
    dashboards: Mapping[str, str]
    #: Secret values by config name, for receiver URLs.
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


class MonitoringStack(pulumi.ComponentResource):
    """Metrics, alerts and dashboards for the model servers."""

    namespace: k8s.core.v1.Namespace | None
    release: Release | None
    service_monitors: dict[str, k8s.apiextensions.CustomResource]
    rules: k8s.apiextensions.CustomResource | None
    dashboards: dict[str, k8s.core.v1.ConfigMap]
    receiver_secret: k8s.core.v1.Secret | None
    alertmanager_config: k8s.apiextensions.CustomResource | None

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:monitoring:MonitoringStack", name, None, opts)
        config = args.config
        ns = config.namespace
        labels = {**args.labels, SELECTOR_LABEL: "true", "app.kubernetes.io/part-of": "slm-deploy"}
        self.namespace = None
        self.release = None
        self.receiver_secret = None
        self.alertmanager_config = None
        installs: list[pulumi.Resource] = []
        if config.mode == "kube-prometheus-stack":
            # node-exporter (host namespaces) is off, so every chart pod can run `restricted`;
            # `monitoring.podSecurity: baseline` relaxes enforcement for charts that cannot.
            self.namespace = restricted_namespace(
                f"{name}-namespace", ns, labels, opts=pulumi.ResourceOptions(parent=self), enforce=config.pod_security
            )
            self.release = Release(
                f"{name}-release",
                name=RELEASE_NAME,
                chart=CHART,
                version=CHART_VERSION,
                repository_opts=RepositoryOptsArgs(repo=REPOSITORY),
                namespace=ns,
                atomic=True,
                values=chart_values(config),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
            )
            installs = [self.release]
            if config.receivers:
                self._receivers(name, config, args, labels, installs)
        # Objects the operator reads must wait for its CRDs (installed by the chart).
        after = pulumi.ResourceOptions(parent=self, depends_on=installs)

        self.service_monitors = {}
        for target in args.targets:
            self.service_monitors[target.model] = k8s.apiextensions.CustomResource(
                f"{name}-scrape-{target.model}",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata=ObjectMetaArgs(name=target.model, namespace=target.namespace, labels=labels),
                spec={
                    "selector": {"matchLabels": target.selector},
                    "endpoints": [_endpoint(target)],
                },
                opts=after,
            )
        self.rules = None
        if args.rules.get("groups"):
            self.rules = k8s.apiextensions.CustomResource(
                f"{name}-rules",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata=ObjectMetaArgs(name="slm-deploy-model-servers", namespace=ns, labels=labels),
                spec=args.rules,
                opts=after,
            )
        self.dashboards = {}
        for file_name, text in sorted(args.dashboards.items()):
            stem = file_name.removesuffix(".json")
            self.dashboards[stem] = k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{stem}",
                metadata=ObjectMetaArgs(
                    name=f"slm-dashboard-{stem}", namespace=ns, labels={**labels, DASHBOARD_LABEL: "1"}
                ),
                data={file_name: text},
                opts=after,
            )
        self.register_outputs({"prometheus": prometheus_query_url(config), "mode": config.mode})

    def _receivers(
        self,
        name: str,
        config: MonitoringConfig,
        args: MonitoringStackArgs,
        labels: dict[str, str],
        installs: list[pulumi.Resource],
    ) -> None:
        """Alertmanager receivers whose URLs stay secrets: a Secret, referenced by key from an AlertmanagerConfig."""
        secret_name = RECEIVER_SECRET
        self.receiver_secret = k8s.core.v1.Secret(
            f"{name}-receiver-urls",
            metadata=ObjectMetaArgs(name=secret_name, namespace=config.namespace, labels=labels),
            type="Opaque",
            string_data={r.name: pulumi.Output.secret(args.secrets[r.url_secret]) for r in config.receivers},
            opts=pulumi.ResourceOptions(parent=self, depends_on=installs),
        )
        self.alertmanager_config = k8s.apiextensions.CustomResource(
            f"{name}-alert-routing",
            api_version="monitoring.coreos.com/v1alpha1",
            kind="AlertmanagerConfig",
            metadata=ObjectMetaArgs(name="slm-deploy", namespace=config.namespace, labels=labels),
            spec=alertmanager_spec(config.receivers, secret_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*installs, self.receiver_secret]),
        )


def alertmanager_spec(receivers: Sequence[AlertmanagerReceiver], secret_name: str) -> dict[str, Any]:
    """Routes by severity to each receiver; every URL is a reference to a key of ``secret_name``."""

    def receiver(r: AlertmanagerReceiver) -> dict[str, Any]:
        url = {"name": secret_name, "key": r.name}
        if r.type == "slack":
            return {"name": r.name, "slackConfigs": [{"apiURL": url, "sendResolved": True}]}
        if r.type == "msteams":
            return {"name": r.name, "msteamsConfigs": [{"webhookUrl": url, "sendResolved": True}]}
        return {"name": r.name, "webhookConfigs": [{"urlSecret": url, "sendResolved": True}]}

    routes = [
        {
            "receiver": r.name,
            "matchers": [{"name": "severity", "value": r.severity, "matchType": "="}] if r.severity != "all" else [],
            "continue": True,
        }
        for r in receivers
    ]
    return {
        "route": {
            "receiver": receivers[0].name,
            "groupBy": ["alertname", "namespace"],
            "matchers": [{"name": "slm_deploy", "value": "true", "matchType": "="}],
            "routes": routes,
        },
        "receivers": [receiver(r) for r in receivers],
    }


def chart_values(config: MonitoringConfig) -> dict[str, Any]:
    """kube-prometheus-stack values: our objects selected whatever their labels, Grafana's sidecar, retention."""
    values: dict[str, Any] = {
        "prometheus": {
            "prometheusSpec": {
                # The chart's default (true) only selects objects labelled release=<release>.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                # Alerts on the model servers must outlive them on a full node (infra/config/priority.py).
                "priorityClassName": priority.SYSTEM.name,
                "retention": config.retention,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": config.storage_size}},
                        }
                    }
                },
            }
        },
        "alertmanager": {
            "alertmanagerSpec": {
                # Our AlertmanagerConfig routes on its own matchers, not only on its namespace.
                "alertmanagerConfigSelector": {"matchLabels": {SELECTOR_LABEL: "true"}},
                "alertmanagerConfigMatcherStrategy": {"type": "None"},
                "priorityClassName": priority.SYSTEM.name,
            }
        },
        "grafana": {
            "enabled": config.grafana,
            "priorityClassName": priority.SYSTEM.name,
            # The chart's own default is a published password: the login comes from a Secret instead.
            "admin": {
                "existingSecret": config.grafana_admin_secret,
                "userKey": GRAFANA_ADMIN_USER_KEY,
                "passwordKey": GRAFANA_ADMIN_PASSWORD_KEY,
            },
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": "1",
                    "searchNamespace": config.namespace,
                }
            },
        },
        # Node metrics come from the cloud's own agent; the exporter needs host namespaces.
        "nodeExporter": {"enabled": False},
        # The operator that runs Prometheus and the metrics of the model servers' objects, at the same priority.
        "prometheusOperator": {"priorityClassName": priority.SYSTEM.name},
        "kube-state-metrics": {"priorityClassName": priority.SYSTEM.name},
    }
    if config.collects_logs:
        # Logs next to metrics: the log store (infra/components/log_store.py) as a second data source.
        values["grafana"]["additionalDataSources"] = [
            {
                "name": "Loki",
                "type": "loki",
                "uid": LOKI_DATASOURCE_UID,
                "access": "proxy",
                "url": loki_url(config.namespace),
                "editable": False,
            }
        ]
    spec = values["prometheus"]["prometheusSpec"]
    if config.prometheus_replicas is not None:
        spec["replicas"] = config.prometheus_replicas
    if config.prometheus_resources is not None:
        spec["resources"] = config.prometheus_resources.as_kubernetes()
    return _merge(values, dict(config.values))


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _endpoint(target: ScrapeTarget) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"port": target.port_name, "path": target.path, "interval": "15s", "scheme": "http"}
    if target.bearer_secret is not None:
        # The Secret must be in the ServiceMonitor's namespace: the model's, where the key is.
        name, key = target.bearer_secret
        endpoint["authorization"] = {"type": "Bearer", "credentials": {"name": name, "key": key}}
    if target.versioned:
        # Service discovery exposes the Service's labels as __meta_kubernetes_service_label_<name, non-alphanumerics
        # as '_'> (Prometheus kubernetes_sd_config, role endpoints).
        source = "__meta_kubernetes_service_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", VERSION_LABEL)
        endpoint["relabelings"] = [{"sourceLabels": [source], "targetLabel": METRIC_VERSION_LABEL, "action": "replace"}]
    return endpoint
