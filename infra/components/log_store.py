"""Container logs next to the metrics: Loki (single binary) and Grafana Alloy, as pinned, hardened Helm releases.

Why Loki and Alloy (docs/monitoring.md has the comparison): they run on any cluster (the stacks run on AKS and
on existing clusters alike), Grafana already queries them, and the log store stays in the cluster with the
metrics. Loki runs as one single-binary StatefulSet on a filesystem volume, with the compactor deleting logs
after ``monitoring.logs.retentionDays``; the caches, gateway, canary, test pod and MinIO the chart can add are
off. Alloy runs as one Deployment that reads logs through the Kubernetes API (``loki.source.kubernetes``):
no hostPath, no root, no DaemonSet (promtail, the usual alternative, is deprecated and reads node files).

Both releases are recorded for review like the kube-prometheus-stack one (``_helm/<namespace>/<release>.yaml``)
and their values are read by the pack (helm-no-privileged-workloads, helm-log-retention).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.helm.v3 import Release, RepositoryOptsArgs
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicySpecArgs,
)

from infra.components.pod_security import restricted_container_values, restricted_pod_values
from infra.config import priority
from infra.config.monitoring import LogsConfig
from infra.monitoring.logs import ALLOY_METRICS_PORT_NAME, ALLOY_RELEASE, LOKI_RELEASE, alloy_config

#: Loki's chart moved to the Grafana community's repository in March 2026 (Grafana's Loki docs, "Install the
#: monolithic Helm chart"); 8.2.0 ships Loki 3.6.7.
LOKI_CHART = "loki"
LOKI_REPOSITORY = "https://grafana-community.github.io/helm-charts"
LOKI_CHART_VERSION = "8.2.0"
#: Grafana Alloy's chart stays in Grafana's repository.
ALLOY_CHART = "alloy"
ALLOY_REPOSITORY = "https://grafana.github.io/helm-charts"
ALLOY_CHART_VERSION = "1.12.0"
#: The users the images define: Loki's ``loki`` (10001), Alloy's ``alloy`` (473), and ``nobody`` for Alloy's
#: config reloader (Grafana's Alloy docs, "Run Alloy as a non-root user in Kubernetes").
LOKI_UID = 10001
ALLOY_UID = 473
RELOADER_UID = 65534
#: Alloy keeps its write-ahead state here: an emptyDir, as the root filesystem is read-only.
ALLOY_STORAGE = "/tmp/alloy"
ALLOY_STORAGE_VOLUME = "alloy-storage"
#: Loki's pods, as the chart labels them (what the NetworkPolicy protects).
LOKI_POD_SELECTOR = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": LOKI_RELEASE}
#: Alloy's Service, as the chart labels it.
ALLOY_SERVICE_SELECTOR = {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": ALLOY_RELEASE}


@dataclass
class LogStoreArgs:
    config: LogsConfig
    #: The monitoring namespace (created by the monitoring stack), where Loki and Alloy run.
    namespace: str
    #: Namespaces whose pods' logs are collected: the models' and the gateway proxies'.
    namespaces: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)


def loki_values(config: LogsConfig) -> dict[str, Any]:
    """Loki as one single-binary pod on a filesystem volume, logs deleted after the retention period."""
    persistence: dict[str, Any] = {"enabled": True, "size": config.storage_size}
    if config.storage_class:
        persistence["storageClass"] = config.storage_class
    return {
        "deploymentMode": "SingleBinary",
        "loki": {
            # One tenant: Loki's tenant header is not authentication. Only the monitoring namespace may reach
            # Loki (the NetworkPolicy below), and Grafana's login guards reading.
            "auth_enabled": False,
            "commonConfig": {"replication_factor": 1},
            "storage": {"type": "filesystem"},
            "schemaConfig": {
                "configs": [
                    {
                        "from": "2024-04-01",
                        "store": "tsdb",
                        "object_store": "filesystem",
                        "schema": "v13",
                        "index": {"prefix": "loki_index_", "period": "24h"},
                    }
                ]
            },
            # Retention is the compactor's job; without retention_enabled, retention_period deletes nothing.
            "limits_config": {"retention_period": f"{config.retention_days * 24}h"},
            "compactor": {"retention_enabled": True, "delete_request_store": "filesystem"},
            "analytics": {"reporting_enabled": False},
            "podSecurityContext": restricted_pod_values(LOKI_UID),
            "containerSecurityContext": restricted_container_values(LOKI_UID),
            "enableServiceLinks": False,
        },
        "singleBinary": {
            "replicas": 1,
            # Monitoring outlives the model servers on a full node, like Prometheus (infra/config/priority.py).
            "priorityClassName": priority.SYSTEM.name,
            "persistence": persistence,
            "resources": config.resources.as_kubernetes(),
        },
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
        # Memcached caches reserve GBs of memory; a single binary serving a few models does not need them.
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        # The nginx gateway, the canary DaemonSet, the Helm test pod and MinIO (published root password) stay off.
        "gateway": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        "minio": {"enabled": False},
        # The rules sidecar watches ConfigMaps through the API; alerts come from Prometheus instead.
        "sidecar": {"rules": {"enabled": False}},
        "serviceAccount": {"automountServiceAccountToken": False},
    }


def alloy_values(config: LogsConfig, namespaces: Sequence[str], loki_namespace: str) -> dict[str, Any]:
    """Alloy as one non-root Deployment reading pod logs through the API, with a read-only root filesystem."""
    return {
        # The PodLogs CRD is for another way of selecting logs, not used here.
        "crds": {"create": False},
        "alloy": {
            "configMap": {"create": True, "content": alloy_config(namespaces, loki_namespace)},
            "enableReporting": False,
            "storagePath": ALLOY_STORAGE,
            # Node files stay unmounted: logs come through the API server.
            "mounts": {
                "varlog": False,
                "dockercontainers": False,
                "extra": [{"name": ALLOY_STORAGE_VOLUME, "mountPath": ALLOY_STORAGE}],
            },
            "securityContext": restricted_container_values(ALLOY_UID),
            "resources": config.collector_resources.as_kubernetes(),
        },
        "configReloader": {"securityContext": restricted_container_values(RELOADER_UID)},
        "global": {"podSecurityContext": restricted_pod_values(ALLOY_UID)},
        "controller": {
            "type": "deployment",
            "replicas": 1,
            "priorityClassName": priority.SYSTEM.name,
            "hostNetwork": False,
            "hostPID": False,
            "volumes": {"extra": [{"name": ALLOY_STORAGE_VOLUME, "emptyDir": {"sizeLimit": "1Gi"}}]},
        },
        # Discovery and log reads go through the API: the token is needed, for exactly that. A Role per collected
        # namespace instead of the chart's cluster-wide read-everything ClusterRole (the chart's rbac template
        # takes `rbac.namespaces` and `rbac.rules`).
        "serviceAccount": {"automountServiceAccountToken": True},
        "rbac": {
            "create": True,
            "namespaces": sorted(set(namespaces)),
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}],
        },
        "service": {"enabled": True, "type": "ClusterIP"},
        # Our ServiceMonitor (below) keeps the log lines' namespace and pod labels on the counter.
        "serviceMonitor": {"enabled": False},
    }


class LogStore(pulumi.ComponentResource):
    """Loki, the collector that feeds it, the scrape of the error counter, and who may reach Loki."""

    loki: Release
    alloy: Release
    collector_scrape: k8s.apiextensions.CustomResource
    loki_network_policy: k8s.networking.v1.NetworkPolicy

    def __init__(self, name: str, args: LogStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:monitoring:LogStore", name, None, opts)
        config, ns = args.config, args.namespace
        labels = {**args.labels, "app.kubernetes.io/part-of": "slm-deploy"}
        child = pulumi.ResourceOptions(parent=self)
        self.loki = Release(
            f"{name}-loki",
            name=LOKI_RELEASE,
            chart=LOKI_CHART,
            version=LOKI_CHART_VERSION,
            repository_opts=RepositoryOptsArgs(repo=LOKI_REPOSITORY),
            namespace=ns,
            atomic=True,
            values=loki_values(config),
            opts=child,
        )
        self.alloy = Release(
            f"{name}-collector",
            name=ALLOY_RELEASE,
            chart=ALLOY_CHART,
            version=ALLOY_CHART_VERSION,
            repository_opts=RepositoryOptsArgs(repo=ALLOY_REPOSITORY),
            namespace=ns,
            atomic=True,
            values=alloy_values(config, args.namespaces, ns),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.loki]),
        )
        # honorLabels: the counter's namespace/pod are the logging pod's, not Alloy's own.
        self.collector_scrape = k8s.apiextensions.CustomResource(
            f"{name}-collector-scrape",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=ObjectMetaArgs(name=ALLOY_RELEASE, namespace=ns, labels=labels),
            spec={
                "selector": {"matchLabels": dict(ALLOY_SERVICE_SELECTOR)},
                "endpoints": [
                    {
                        "port": ALLOY_METRICS_PORT_NAME,
                        "path": "/metrics",
                        "interval": "30s",
                        "scheme": "http",
                        "honorLabels": True,
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.alloy]),
        )
        # Logs may quote prompts: only the monitoring namespace (collector, Grafana, Prometheus) reaches Loki.
        self.loki_network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-loki-ingress",
            metadata=ObjectMetaArgs(name=f"{LOKI_RELEASE}-ingress", namespace=ns, labels=labels),
            spec=NetworkPolicySpecArgs(
                pod_selector=LabelSelectorArgs(match_labels=dict(LOKI_POD_SELECTOR)),
                policy_types=["Ingress"],
                ingress=[
                    NetworkPolicyIngressRuleArgs(
                        from_=[NetworkPolicyPeerArgs(pod_selector=LabelSelectorArgs(match_labels={}))]
                    )
                ],
            ),
            opts=child,
        )
        self.register_outputs(
            {"loki": LOKI_CHART_VERSION, "collector": ALLOY_CHART_VERSION, "retentionDays": config.retention_days}
        )
