"""The cyclic collector is paused only for the duration of a plan or a policy run."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from infra import collector
from infra.plan.stack import plan_stack


@pytest.fixture
def collector_on() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_paused_switches_the_collector_off_and_back_on(collector_on: None) -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_leaves_a_disabled_collector_disabled(collector_on: None) -> None:
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_paused_restores_the_collector_when_the_body_fails(collector_on: None) -> None:
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_plan_runs_with_the_collector_off_and_leaves_it_on(
    collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.plan import engine

    seen: list[bool] = []
    run_program = engine.run_program

    def observed(*args: object, **kwargs: object) -> engine.PlanRun:
        seen.append(gc.isenabled())
        return run_program(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "run_program", observed)
    plan_stack("dev")
    assert seen == [False]
    assert gc.isenabled()


def test_a_kept_body_is_frozen_before_the_collector_is_back_on(
    collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`keep`: what the body made is frozen first, so no full collection traverses it when the collector resumes."""
    events: list[tuple[str, bool]] = []
    monkeypatch.setattr(gc, "freeze", lambda: events.append(("freeze", gc.isenabled())))
    with collector.paused(keep=True):
        pass
    with collector.paused():
        pass
    assert events == [("freeze", False)]
    assert gc.isenabled()


def test_the_mock_run_sends_no_call_stacks_and_restores_the_sdk() -> None:
    """Source positions are for the real engine's diagnostics: skipped under the mock engine, restored after."""
    from pulumi.runtime import resource as sdk_resource

    from infra.plan import engine

    original = sdk_resource._get_stack_trace
    seen: list[object] = []
    engine.run_program(lambda: seen.append(sdk_resource._get_stack_trace()), "positions", True)
    assert seen and not list(seen[0].frames)  # type: ignore[attr-defined]
    assert sdk_resource._get_stack_trace is original
