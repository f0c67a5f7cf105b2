"""AKS's support window of Kubernetes minor versions, as dated data with its source.

The data lives in ``kubernetes_versions.yaml`` beside this module (package data): per minor, its AKS GA date,
the end of its standard support and the end of AKS long-term support, from the AKS release calendar. It is
read once, on first use. :func:`support_status` says where a minor stands on a given day.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "KubernetesVersionsError",
    "MinorSupport",
    "SupportCalendar",
    "SupportStatus",
    "load_calendar",
    "minor_key",
    "support_status",
]

_DATA_FILE = "kubernetes_versions.yaml"
_MINOR = re.compile(r"1\.(\d{1,3})")


class KubernetesVersionsError(ValueError):
    """The data file is malformed (a packaging or editing mistake, never user input)."""


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MinorSupport(_Data):
    """One minor version's dates on AKS."""

    ga: datetime.date = Field(description="AKS general availability (the first day of the month the calendar says).")
    end_of_support: datetime.date = Field(description="Last day of AKS standard (community) support.")
    lts_end: datetime.date | None = Field(None, description="Last day of AKS long-term support, if it has one.")

    @property
    def lts(self) -> bool:
        return self.lts_end is not None

    @model_validator(mode="after")
    def _ordered(self) -> MinorSupport:
        if not self.ga < self.end_of_support:
            raise ValueError(f"end_of_support {self.end_of_support} is not after ga {self.ga}")
        if self.lts_end is not None and self.lts_end < self.end_of_support:
            raise ValueError(f"lts_end {self.lts_end} is before end_of_support {self.end_of_support}")
        return self


class SupportCalendar(_Data):
    """The whole file: where the dates come from, and the dates per minor ("1.34")."""

    source: str = Field(pattern=r"^https://")
    as_of: datetime.date = Field(description="Date of the revision of the source page the rows come from.")
    read_on: datetime.date = Field(description="When the page was read.")
    versions: dict[str, MinorSupport] = Field(min_length=1)

    @model_validator(mode="after")
    def _minors(self) -> SupportCalendar:
        for key in self.versions:
            if not _MINOR.fullmatch(key):
                raise ValueError(f"'{key}' is not a Kubernetes minor version such as 1.34")
        return self

    def minors(self) -> list[str]:
        """The minors in the calendar, oldest first."""
        return sorted(self.versions, key=minor_key)

    def supported_on(self, day: datetime.date) -> list[str]:
        """The minors in AKS standard support on ``day``, oldest first."""
        return [m for m in self.minors() if self.versions[m].ga <= day <= self.versions[m].end_of_support]


def minor_key(version: str) -> tuple[int, int]:
    """``"1.34"`` or ``"1.34.4"`` → ``(1, 34)``, for ordering."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _read_data() -> Any:
    from importlib.resources import files

    from infra.yamlio import load_yaml

    text = files(__package__ or "infra.catalog").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return load_yaml(text)


@functools.cache
def load_calendar() -> SupportCalendar:
    """The support calendar, validated (read once per process)."""
    try:
        return SupportCalendar.model_validate(_read_data())
    except ValidationError as error:
        raise KubernetesVersionsError(f"{_DATA_FILE}: {error}") from error


Phase = Literal["not-ga", "supported", "lts-only", "ended", "unlisted-older", "unlisted-newer"]


@dataclass(frozen=True)
class SupportStatus:
    """Where one minor stands on one day."""

    minor: str
    phase: Phase
    #: Its row in the calendar, when it has one.
    support: MinorSupport | None
    #: The minors in standard support that day (what to move to).
    supported: tuple[str, ...]

    @property
    def in_window(self) -> bool:
        return self.phase == "supported"


def support_status(version: str, day: datetime.date, calendar: SupportCalendar | None = None) -> SupportStatus:
    """Where ``version`` (a minor, or a patch whose minor is taken) stands on ``day`` in AKS's calendar."""
    calendar = calendar or load_calendar()
    minor = ".".join(version.split(".")[:2])
    supported = tuple(calendar.supported_on(day))
    support = calendar.versions.get(minor)
    phase: Phase
    if support is None:
        minors = calendar.minors()
        phase = "unlisted-older" if minor_key(minor) < minor_key(minors[0]) else "unlisted-newer"
    elif day < support.ga:
        phase = "not-ga"
    elif day <= support.end_of_support:
        phase = "supported"
    elif support.lts_end is not None and day <= support.lts_end:
        phase = "lts-only"
    else:
        phase = "ended"
    return SupportStatus(minor=minor, phase=phase, support=support, supported=supported)
