"""Small helpers for reading recorded resources in tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any

from infra.plan.model import RecordedResource


def of_kind(resources: Iterable[RecordedResource], kind: str) -> list[RecordedResource]:
    return [r for r in resources if r.custom and r.kind == kind]


def one(resources: Iterable[RecordedResource], kind: str, name: str) -> RecordedResource:
    matches = [r for r in of_kind(resources, kind) if r.name == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(deployment: RecordedResource) -> dict[str, Any]:
    spec: dict[str, Any] = deployment.inputs["spec"]["template"]["spec"]
    return spec


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server the test started, and kill it if it does not stop within 10 seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
