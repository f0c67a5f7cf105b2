"""Today's date, overridable with SLM_DEPLOY_TODAY=YYYY-MM-DD (the policy pack reads the same variable)."""

from __future__ import annotations

import datetime
import os

TODAY_ENV = "SLM_DEPLOY_TODAY"


def today() -> datetime.date:
    override = os.environ.get(TODAY_ENV)
    return datetime.date.fromisoformat(override) if override else datetime.date.today()
