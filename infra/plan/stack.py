"""Plan a stack by name: read its stack file, run the program offline, keep everything together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra import collector
from infra.config.loader import StackConfigError, load_stack_file, stack_file
from infra.config.stack import StackConfig
from infra.plan.engine import PlanRun


@dataclass(frozen=True)
class StackPlan:
    stack: str
    stack_file: Path
    config: StackConfig
    run: PlanRun


def load_stack(stack: str, root: Path | None = None) -> tuple[Path, StackConfig]:
    path = stack_file(stack, root)
    return path, load_stack_file(path)


def plan_stack(stack: str, root: Path | None = None, preview: bool = True, keep: bool = False) -> StackPlan:
    """Run the program for ``stack`` under the mock engine (preview: outputs unknown).

    ``keep``: the plan lives until the process ends (a command): frozen, never traversed by the collector.
    """
    path, config = load_stack(stack, root)
    with collector.paused(keep=keep):
        from infra.engines import EngineNotAvailableError
        from infra.plan.engine import run_program
        from infra.platform import deploy

        try:
            run = run_program(lambda: deploy(config), stack, preview)
        except EngineNotAvailableError as error:
            raise StackConfigError(str(path), None, str(error)) from None
    return StackPlan(stack=stack, stack_file=path, config=config, run=run)
