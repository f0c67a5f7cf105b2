"""SLM-HELM-004: chart values passed through from the stack file are admitted path by path.

Typed options (retention, storage, resources, replicas …) are documented and checked; ``values`` under a
stack section goes to the chart as written, and what it does depends on the chart's templates, which no
rule can see. A positive model: per chart, the pack lists the value paths slm-deploy sets or knows to be safe
(``allowedPaths``: a path admits everything below it); every other leaf path of the raw values is a finding
whose subject is that path. In prod it needs a waiver naming the path (``values:
[grafana.grafana.ini.auth.proxy]``, or an ancestor of it): a waiver never covers a path it does not name,
so "raise the scrape interval" cannot also admit an auth proxy. The dangerous classes (auth proxy and
anonymous access, RBAC on Secrets, remote write/read outside the cluster, ingresses, host namespaces) have
rules of their own that judge the merged values whatever this rule's waivers say.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib import stack_config
from ...lib.finding import Finding
from ...lib.helm import HELM_RELEASE, chart_name
from ...lib.k8s import is_map
from ...lib.rule import SLM, Rule

#: Chart → the stack config section whose ``values`` are merged into its values as given.
RAW_VALUES_SECTIONS = {"kube-prometheus-stack": "monitoring"}
#: Chart → value paths (and everything below them) known to be safe to take from a stack file.
DEFAULT_ALLOWED_PATHS: dict[str, list[str]] = {
    "kube-prometheus-stack": [
        "prometheus.prometheusSpec.scrapeInterval",
        "prometheus.prometheusSpec.scrapeTimeout",
        "prometheus.prometheusSpec.evaluationInterval",
        "prometheus.prometheusSpec.retentionSize",
        "prometheus.prometheusSpec.externalLabels",
        "prometheus.prometheusSpec.resources",
        "prometheus.prometheusSpec.walCompression",
        "alertmanager.alertmanagerSpec.resources",
        "grafana.resources",
        "grafana.defaultDashboardsTimezone",
        "defaultRules.rules",
        "kubeStateMetrics.enabled",
        "kube-state-metrics.resources",
    ]
}


def leaf_paths(value: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of the leaves of a values tree (a list is a leaf: its items replace the chart's)."""
    if is_map(value) and value:
        for key in value:
            yield from leaf_paths(value[key], f"{path}.{key}" if path else str(key))
    else:
        yield path


def _admitted(path: str, allowed: list[str]) -> bool:
    return any(path == a or path.startswith(f"{a}.") for a in allowed)


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    chart = chart_name(args.props)
    section = RAW_VALUES_SECTIONS.get(chart)
    if section is None:
        return
    settings = stack_config.value(section, default={})
    raw = settings.get("values") if is_map(settings) else None
    if not is_map(raw) or not raw:
        return
    configured = config.get("allowedPaths") or {}
    listed = configured.get(chart) if chart in configured else DEFAULT_ALLOWED_PATHS.get(chart)
    allowed = [str(p) for p in listed or []]
    for path in leaf_paths(raw):
        if not _admitted(path, allowed):
            yield Finding(
                f"takes the raw chart value {path} from the stack file ({section}.values), which {chart}'s "
                "allow-list does not admit: use a typed option, or waive this path (values: [path]) with a reason",
                subject=path,
                tree=True,
            )


RULE = Rule(
    id="SLM-HELM-004",
    name="helm-raw-values",
    title="Raw Helm values from the stack file are admitted path by path",
    severity="medium",
    rationale=(
        "A raw override reaches the chart's templates unchecked; only paths the pack knows pass, and a reviewer "
        "must see who accepted each other path and why."
    ),
    remediation=(
        "Replace the override with a typed option, add the path to allowedPaths in policies/config/<level>.json "
        "after review, or add a waiver naming the path (values: [path]) for the release."
    ),
    controls={SLM: ("Governance: exceptions are explicit, owned and time-limited",)},
    resource_types=frozenset({HELM_RELEASE}),
    config={
        "allowedPaths": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "default": DEFAULT_ALLOWED_PATHS,
            "description": "Chart → value paths a stack may set in raw values (a path admits what is below it).",
        }
    },
    check=check,
    subject="Helm value path",
)
