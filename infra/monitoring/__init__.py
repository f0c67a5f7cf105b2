"""Monitoring of the model servers as pure data: alert rules, dashboards and the metric catalogue.

No Pulumi resources here: ``render_rules`` gives a PrometheusRule ``spec`` and ``render_dashboards``
the dashboard files for Grafana's sidecar; the components that deliver them live elsewhere.
"""

from infra.config.monitoring import AlertThresholds, MonitoringOptions
from infra.monitoring.dashboards import render_dashboards
from infra.monitoring.model import MonitoredModel
from infra.monitoring.rules import ALERTS, render_rules, rules_yaml

__all__ = [
    "ALERTS",
    "AlertThresholds",
    "MonitoredModel",
    "MonitoringOptions",
    "render_dashboards",
    "render_rules",
    "rules_yaml",
]
