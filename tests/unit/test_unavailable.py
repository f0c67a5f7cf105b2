"""A missing tool skips a test on a developer's machine and fails it in CI, which installs the tool."""

from __future__ import annotations

import pytest

from tests.helpers import installed, unavailable


def test_a_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool is not installed"):
        installed("no-such-tool", "no-such-package")


def test_a_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI installs what this test needs"):
        unavailable("no-such-tool is not installed")
