"""SLM-HELM-004: chart values passed through from the stack file are an exception, not a setting.

Typed options (retention, storage, resources, replicas …) are documented and checked; ``values`` under a
stack section goes to the chart as written. The other Helm rules still read the merged values, but what a
raw override does depends on the chart's templates, which no rule can see: in prod it needs a waiver (an
owner, a reason and an expiry), elsewhere it is reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib import stack_config
from ...lib.helm import HELM_RELEASE, chart_name
from ...lib.k8s import is_map
from ...lib.rule import SLM, Rule

#: Chart → the stack config section whose ``values`` are merged into its values as given.
RAW_VALUES_SECTIONS = {"kube-prometheus-stack": "monitoring"}


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    section = RAW_VALUES_SECTIONS.get(chart_name(args.props))
    if section is None:
        return
    settings = stack_config.value(section, default={})
    raw = settings.get("values") if is_map(settings) else None
    if is_map(raw) and raw:
        yield (
            f"takes raw chart values from the stack file ({section}.values: {', '.join(sorted(map(str, raw)))}); "
            "use the typed options where they exist, else waive this policy for the release with a reason"
        )


RULE = Rule(
    id="SLM-HELM-004",
    name="helm-raw-values",
    title="Raw Helm values from the stack file need an explicit, owned exception",
    severity="medium",
    rationale="A raw override reaches the chart's templates unchecked; a reviewer must see who accepted it and why.",
    remediation="Replace the override with a typed option, or add a waiver (reason, owner, expiry) for the release.",
    controls={SLM: ("Governance: exceptions are explicit, owned and time-limited",)},
    resource_types=frozenset({HELM_RELEASE}),
    check=check,
)
