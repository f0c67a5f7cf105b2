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

    @field_validator("reason", "owner")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def entry(self) -> dict[str, str]:
        """The waiver as the stack file states it, for the one parser (:func:`policies.lib.waivers.parse`)."""
        return {
            "policy": self.policy,
            "resource": self.resource,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }
