"""SLM-HELM-006: chart values must not open the dangerous classes, whatever else is waived.

Judged on the values the release gets (slm-deploy's and the stack's, merged), anywhere in the tree:

- **RBAC on Secrets**: extra RBAC rules (``extraClusterRoleRules``, ``extraRoleRules``, ``rbac.extraRules`` …) whose
  resources include ``secrets`` or ``*`` give the chart's service account every Secret they reach;
- **remote write/read outside the cluster**: ``remoteWrite``/``remoteRead`` URLs whose host is not a cluster
  Service name (``*.svc``, ``*.svc.cluster.local`` or a bare name) send metrics, which carry prompts' sizes,
  model names and client names, off the cluster, or read them from there;
- **ingresses**: ``ingress.enabled: true`` puts a component (Grafana, Prometheus, Alertmanager) behind an
  Ingress controller outside the entry point's TLS and key checks.

Auth proxy and anonymous access are ``helm-grafana-authentication``'s; host namespaces
``helm-no-privileged-workloads``'. A waiver of ``helm-raw-values`` covers none of these: each finding here
names its value path as its subject and needs a waiver of this rule naming that path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from pulumi_policy import ResourceValidationArgs

from ...lib.finding import Finding
from ...lib.helm import HELM_RELEASE, dotted, values, walk
from ...lib.k8s import is_list, is_map, items
from ...lib.rule import NSA, SLM, Rule

_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


def _rbac_rules(key: str) -> bool:
    lowered = key.lower()
    return (lowered.startswith("extra") and lowered.endswith("rules")) or lowered in ("extrarules", "clusterrolerules")


def _inside_cluster(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return bool(host) and ("." not in host or host.endswith(_CLUSTER_SUFFIXES))


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for path, mapping in walk(values(args.props)):
        for key in mapping:
            value = mapping[key]
            where = dotted((*path, str(key)))
            if _rbac_rules(str(key)) and is_list(value):
                for rule in items(value):
                    resources = {str(r) for r in items(rule.get("resources"))} if is_map(rule) else set()
                    if resources & {"secrets", "*"}:
                        yield Finding(
                            f"{where} grants {', '.join(map(str, items(rule.get('verbs')))) or 'access'} on "
                            f"{', '.join(sorted(resources & {'secrets', '*'}))}: the chart's service account reads "
                            "every Secret it reaches",
                            subject=where,
                        )
            if str(key) in ("remoteWrite", "remoteRead") and is_list(value):
                for index, entry in enumerate(items(value)):
                    url = str(entry.get("url", "")) if is_map(entry) else ""
                    if url and not _inside_cluster(url):
                        yield Finding(
                            f"{where}[{index}] sends to {url}, outside the cluster: metrics leave the cluster ({key})",
                            subject=f"{where}[{index}]",
                        )
            if str(key) == "ingress" and is_map(value) and value.get("enabled") is True:
                yield Finding(
                    f"{where}.enabled puts the component behind an Ingress, outside the entry point's TLS and key "
                    "checks",
                    subject=f"{where}.enabled",
                )


RULE = Rule(
    id="SLM-HELM-006",
    name="helm-dangerous-values",
    title="Chart values must not grant Secrets, send metrics off the cluster or open ingresses",
    severity="high",
    rationale=(
        "A chart value can quietly grant a service account every Secret, ship the cluster's metrics to any URL or "
        "publish a dashboard through an Ingress; these are refused by class, not by a list of known bad values."
    ),
    remediation=(
        "Remove the value; for a remote write target use a Service in the cluster (a relay that the network "
        "policy controls), for access use the entry point; or waive the path for this release with a reason."
    ),
    controls={NSA: ("Network separation and hardening", "Authentication and authorization"), SLM: ("Monitoring",)},
    resource_types=frozenset({HELM_RELEASE}),
    check=check,
    subject="Helm value path",
)
