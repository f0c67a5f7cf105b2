"""SLM-HELM-005: a log store installed by a chart deletes logs after a bounded retention period.

Container logs of model servers and gateways may quote prompts, API callers and error payloads: personal
data in many deployments. Loki keeps everything forever unless its compactor applies retention: both
``loki.compactor.retention_enabled: true`` and a ``loki.limits_config.retention_period`` above zero
(``0s`` means "never delete") are needed, and the period must not exceed ``maxRetentionDays`` (the
pack's config; 90 by default, lower it per environment).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.helm import HELM_RELEASE, chart_name, values
from ...lib.k8s import get
from ...lib.rule import SLM, Rule

#: Charts that install Loki, and where its configuration sits in their values.
LOKI_VALUES: dict[str, tuple[str, ...]] = {"loki": ("loki",)}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def duration_days(text: str) -> float | None:
    """Days in a Loki/Prometheus duration (``744h``, ``30d``, ``1w2d``), or None when it is not one."""
    parts = _DURATION.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(int(number) * _SECONDS[unit] for number, unit in parts) / 86400


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    chart = chart_name(args.props)
    if chart not in LOKI_VALUES:
        return
    loki = get(values(args.props), *LOKI_VALUES[chart], default={})
    path = ".".join(LOKI_VALUES[chart])
    if get(loki, "compactor", "retention_enabled") is not True:
        yield f"values {path}.compactor.retention_enabled is not true: Loki deletes no log, ever"
    period = get(loki, "limits_config", "retention_period")
    if period is None:
        yield f"values {path}.limits_config.retention_period is not set: logs are kept forever"
        return
    days = duration_days(str(period))
    limit = float(config.get("maxRetentionDays", 90))
    if days is None:
        yield f"values {path}.limits_config.retention_period '{period}' is not a duration (e.g. 168h, 30d)"
    elif days == 0:
        yield f"values {path}.limits_config.retention_period is {period}: Loki reads 0 as keep forever"
    elif days > limit:
        yield f"values {path}.limits_config.retention_period {period} is {days:g} days, above the {limit:g} allowed"


RULE = Rule(
    id="SLM-HELM-005",
    name="helm-log-retention",
    title="Log stores installed by a chart must delete logs after a bounded retention period",
    severity="medium",
    rationale="Model-server and gateway logs may quote prompts and callers; a log store without retention keeps "
    "that personal data forever and grows without bound (cost).",
    remediation="Set monitoring.logs.retentionDays (Loki: compactor.retention_enabled true and "
    "limits_config.retention_period) at or below the environment's maxRetentionDays.",
    controls={SLM: ("Data minimisation: log retention",)},
    resource_types=frozenset({HELM_RELEASE}),
    config={
        "maxRetentionDays": {
            "type": "number",
            "default": 90,
            "minimum": 1,
            "description": "Longest retention a log store may keep logs for, in days.",
        },
    },
    check=check,
)
