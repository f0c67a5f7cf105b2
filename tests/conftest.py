"""Shared fixtures: the repository root and the reference stacks planned once per test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.plan.stack import StackPlan, plan_stack

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_STACKS = ("dev", "staging", "prod", "canary")

_PLANS: dict[tuple[str, bool], StackPlan] = {}


def planned(stack: str, preview: bool) -> StackPlan:
    """The reference stack's plan (the mock engine run is costly, so it is kept for the session)."""
    key = (stack, preview)
    if key not in _PLANS:
        _PLANS[key] = plan_stack(stack, ROOT, preview=preview)
    return _PLANS[key]


#: Waivers expire: checks of the reference stacks run on a fixed day, so a test never turns red by date alone.
REFERENCE_TODAY = "2026-11-29"


@pytest.fixture(autouse=True)
def _fixed_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", REFERENCE_TODAY)


@pytest.fixture(autouse=True)
def _xdist_group_kept(request: pytest.FixtureRequest) -> None:
    """A test of an ``xdist_group`` runs in its group's one worker, or fails saying why it would not.

    The groups share one costly thing per session (the local control plane, llama-server, the ONNX server).
    pytest-xdist marks a grouped test by a ``@group`` suffix on its node id; when a pytest release stops
    carrying it (pytest 9.2: pytest-dev/pytest-xdist#1386), ``--dist loadgroup`` silently spreads a group over
    every worker and each starts its own.
    """
    groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                     for mark in request.node.iter_markers("xdist_group")})  # fmt: skip
    suffix = "@" + "_".join(groups)
    if groups and getattr(request.config.option, "loadgroup", False) and not request.node.nodeid.endswith(suffix):
        pytest.fail(
            "pytest-xdist's --dist loadgroup lost this test's group (pytest-dev/pytest-xdist#1386): "
            "install the test extra's pins (pyproject.toml)"
        )


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def plan_of() -> Callable[[str, bool], StackPlan]:
    return planned


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    """A project directory with an empty stacks/ folder, for stack files written by a test."""
    (tmp_path / "stacks").mkdir()
    return tmp_path
