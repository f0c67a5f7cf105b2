"""SLM-HELM-003: Grafana installed by a chart keeps its login: no default or plaintext admin password, no
anonymous access.

kube-prometheus-stack ships Grafana with a well-known default admin password unless
``grafana.admin.existingSecret`` names a Secret that holds one; a password written into the values is
stored in the Helm release and readable by whoever can read the release. ``auth.anonymous`` in
``grafana.ini`` lets anyone in without a login.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.helm import HELM_RELEASE, chart_name, values
from ...lib.k8s import get, is_map
from ...lib.rule import AKS, NSA, Rule

#: Charts that install Grafana, and where its values sit.
GRAFANA_VALUES = {"kube-prometheus-stack": ("grafana",), "grafana": ()}
#: Charts whose Grafana falls back to a fixed, published admin password.
DEFAULT_PASSWORD_CHARTS = frozenset({"kube-prometheus-stack"})


def _enabled(ini: Any, section: str) -> bool:
    """``[auth.<section>] enabled`` in grafana.ini, written as one dotted key or nested (both reach the file)."""
    if not is_map(ini):
        return False
    value = get(ini, f"auth.{section}", "enabled")
    nested = get(ini, "auth", section, "enabled")
    return value is True or nested is True or str(value).lower() == "true" or str(nested).lower() == "true"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    chart = chart_name(args.props)
    if chart not in GRAFANA_VALUES:
        return
    grafana = (
        get(values(args.props), *GRAFANA_VALUES[chart], default={}) if GRAFANA_VALUES[chart] else values(args.props)
    )
    if not is_map(grafana) or grafana.get("enabled") is False:
        return
    if grafana.get("adminPassword") is not None:
        yield "Grafana's admin password is written in the chart values: reference a Secret (admin.existingSecret)"
    elif chart in DEFAULT_PASSWORD_CHARTS and not get(grafana, "admin", "existingSecret"):
        yield (
            f"Grafana would start with {chart}'s published default admin password: set admin.existingSecret "
            "to a Secret holding the admin user and password"
        )
    if _enabled(grafana.get("grafana.ini"), "anonymous"):
        yield "grafana.ini enables anonymous access (auth.anonymous.enabled): every dashboard is open without a login"
    if _enabled(grafana.get("grafana.ini"), "proxy"):
        yield (
            "grafana.ini enables auth.proxy: Grafana logs in whoever a request header names, so anyone who reaches "
            "its port can claim to be the admin"
        )


RULE = Rule(
    id="SLM-HELM-003",
    name="helm-grafana-authentication",
    title="Grafana from a chart must require a login with a password kept in a Secret",
    severity="high",
    rationale="Grafana queries every metric of the cluster and its data sources; a known or anonymous login "
    "opens them to anyone who reaches the service.",
    remediation="Create the admin Secret (monitoring.grafanaAdminSecret); remove adminPassword and anonymous access.",
    controls={NSA: ("Authentication and authorization",), AKS: ("IM-1: use centralized identity and authentication",)},
    resource_types=frozenset({HELM_RELEASE}),
    check=check,
)
