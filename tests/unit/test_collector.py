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
