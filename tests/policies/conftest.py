from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_date_override(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Waiver expiry must only depend on what each test sets."""
    monkeypatch.delenv("SLM_DEPLOY_TODAY", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    yield
