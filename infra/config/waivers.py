"""Accepted policy exceptions (`waivers:`), as the stack file states them.

The shape is checked here; what a waiver covers, and until when, is decided by one matcher for every
use (config checks, checkov skip annotations, the policy pack): :mod:`policies.lib.waivers`.
"""

from __future__ import annotations

import datetime

from pydantic import Field, field_validator

from infra.config.base import ConfigModel


class WaiverConfig(ConfigModel):
    """An accepted exception to one policy for one resource, owned by someone, until a date."""

    policy: str = Field(min_length=1, description="Policy name (`no-privileged-containers`) or id.")
    resource: str = Field(min_length=1, description="Logical name (or URN) of the waived resource.")
    reason: str = Field(min_length=1, description="Why the exception is acceptable (shown in every report).")
    owner: str = Field(min_length=1, description="Who answers for it (a person or team).")
    expires: datetime.date = Field(
        description="First day on which the waiver no longer applies (it covers up to the day before)."
    )
    subjects: list[str] = Field(
        default_factory=list,
        description="What exactly it covers: the subjects of the findings (an engine flag, a label key, a CIDR, a "
        "host pattern …, as the report prints them after `subject:`); a finding with a subject it does not name is "
        "not waived.",
    )
    values: list[str] = Field(
        default_factory=list,
        description="Helm value paths it covers (`grafana.grafana.ini.auth.proxy`): subjects of the Helm rules.",
    )
    max_monthly_usd: float | None = Field(
        None, ge=0, description="`monthly-budget` waivers: the largest monthly estimate it covers (required there)."
    )

    @field_validator("subjects", "values")
    @classmethod
    def _subjects(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("a subject must not be blank")
        return value

    @field_validator("reason", "owner")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def entry(self) -> dict[str, object]:
        """The waiver as the stack file states it, for the one parser (:func:`policies.lib.waivers.parse`)."""
        entry: dict[str, object] = {
            "policy": self.policy,
            "resource": self.resource,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }
        if self.subjects:
            entry["subjects"] = list(self.subjects)
        if self.values:
            entry["values"] = list(self.values)
        if self.max_monthly_usd is not None:
            entry["maxMonthlyUsd"] = self.max_monthly_usd
        return entry
