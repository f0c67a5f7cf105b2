"""checkov (offline) on a prod render with the chat UI: no check fails (the image is pinned by digest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chat_ui.chat_ui_cases import write_stack
from tests.unit.test_checkov import check_ids, render, scan


def test_chat_ui_render_fails_no_checkov_check(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write_stack(stack_dir, monkeypatch)
    render(stack_dir, name, stack_dir / "render")
    report = scan(stack_dir / "render")
    assert report["summary"]["failed"] == 0, check_ids(report, "failed_checks")
    scanned = {c["resource"] for c in report["results"]["passed_checks"]}
    assert {"Deployment.slm-chat.chat-ui", "Service.slm-chat.chat-ui"} <= scanned
