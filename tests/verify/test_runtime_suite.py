"""The shipped testinfra suite, run for real with testinfra's local:// backend against a local model server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from verify_local_target import LocalServer, start_local_server

from infra.verify.runner import kubectl_hosts, run_suite, smoke_chat

SUITE_CHECKS = {
    "test_process_runs_as_the_configured_uid",
    "test_process_is_not_root",
    "test_no_new_privileges",
    "test_capabilities_dropped",
    "test_root_filesystem_is_read_only",
    "test_only_expected_ports_listen",
    "test_model_files_are_where_the_engine_expects",
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    running = start_local_server()
    yield running
    running.stop()


def test_the_suite_passes_against_a_hardened_local_server(server: LocalServer) -> None:
    checks = {c.name: c for c in run_suite("local://", server.expectation)}
    assert set(checks) == SUITE_CHECKS
    read_only = checks.pop("test_root_filesystem_is_read_only")
    assert read_only.status == "skipped" and "only a container" in read_only.message
    assert {name: c.status for name, c in checks.items()} == dict.fromkeys(checks, "passed"), checks
    assert server.expectation.uid != 0


def test_the_suite_catches_a_broken_promise(server: LocalServer) -> None:
    wrong = replace(
        server.expectation,
        uid=server.expectation.uid + 1,
        ports=[server.expectation.ports[0] + 1],
        model_files=["weights-that-are-not-there.bin"],
    )
    checks = {c.name: c for c in run_suite("local://", wrong)}
    for name in (
        "test_process_runs_as_the_configured_uid",
        "test_only_expected_ports_listen",
        "test_model_files_are_where_the_engine_expects",
    ):
        assert checks[name].status == "failed", name
    assert "unexpected listening ports" in checks["test_only_expected_ports_listen"].message
    assert checks["test_process_is_not_root"].status == "passed"


def test_smoke_chat_completion(server: LocalServer) -> None:
    check = smoke_chat(server.base_url, server.expectation)
    assert check.status == "passed", check.message
    missing = smoke_chat(server.base_url, replace(server.expectation, api_model="no-such-model"))
    assert missing.status == "failed" and "HTTP 404" in missing.message


def test_kubectl_target_url() -> None:
    assert kubectl_hosts("chat-7d9-x", "slm-chat", "vllm") == "kubectl://chat-7d9-x?container=vllm&namespace=slm-chat"
    assert kubectl_hosts("p", "n", "c", "aks-prod").endswith("&context=aks-prod")


def test_the_suite_against_the_onnx_server() -> None:
    """The real server when it is installed. Under root with an interpreter no other user may run (this
    machine), it runs as root: then the suite must report exactly the two promises root breaks."""
    import os

    from verify_local_target import require_onnx_server

    require_onnx_server()
    server = start_local_server(prefer_onnx=True)
    if server.kind != "onnx":  # it could not run unprivileged: run it as this user instead
        server.stop()
        server = start_local_server(prefer_onnx=True, unprivileged=False)
    try:
        assert server.kind == "onnx"
        checks = {c.name: c.status for c in run_suite("local://", server.expectation)}
        assert smoke_chat(server.base_url, server.expectation).status == "passed"
    finally:
        server.stop()
    assert checks.pop("test_root_filesystem_is_read_only") == "skipped"
    broken = {"test_process_is_not_root", "test_capabilities_dropped"} if server.expectation.uid == 0 else set()
    assert {n for n, s in checks.items() if s == "failed"} == broken
    assert all(s == "passed" for n, s in checks.items() if n not in broken), checks
    assert server.expectation.uid == os.getuid() or server.expectation.uid == 65534
