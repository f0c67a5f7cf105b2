"""What the policies promise, checked at runtime inside a model server (pytest-testinfra).

Run by ``slm-deploy verify`` once per model pod through testinfra's kubectl backend
(``--hosts 'kubectl://POD?container=C&namespace=NS'``), or against a local process with ``local://``.
The expectations (UID, ports, paths, process id) come from the JSON file named by
``SLM_VERIFY_EXPECTATIONS`` (see ``infra/verify/expectations.py``). Only ``/proc`` and ``/bin/sh``
are needed in the target: model-server images rarely ship ``ps``, ``ss`` or ``netstat``.

A check that cannot hold for a local process (a read-only root filesystem needs a container) is
skipped with its reason on ``local://`` and runs on ``kubectl://``.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

_LISTEN = "0A"
_LOOPBACK_V4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp prints it (little-endian)
_LOOPBACK_V6 = "00000000000000000000000001000000"  # ::1


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    path = os.environ.get("SLM_VERIFY_EXPECTATIONS")
    if not path:
        pytest.fail("SLM_VERIFY_EXPECTATIONS names no expectations file")
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def _is_local(host: Any) -> bool:
    return str(host.backend.NAME) == "local"


def _status(host: Any, pid: int) -> dict[str, str]:
    text = host.file(f"/proc/{pid}/status").content_string
    fields = {}
    for line in str(text).splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def test_process_runs_as_the_configured_uid(host: Any, expected: dict[str, Any]) -> None:
    status = _status(host, expected["pid"])
    real, effective, saved, filesystem = (int(v) for v in status["Uid"].split())
    assert (real, effective, saved, filesystem) == (expected["uid"],) * 4
    assert int(status["Gid"].split()[1]) == expected["gid"]


def test_process_is_not_root(host: Any, expected: dict[str, Any]) -> None:
    status = _status(host, expected["pid"])
    assert all(int(v) != 0 for v in status["Uid"].split()), f"runs as root: Uid {status['Uid']}"


def test_no_new_privileges(host: Any, expected: dict[str, Any]) -> None:
    if not expected["no_new_privileges"]:
        pytest.skip("the stack allows privilege escalation for this model (hardening.allowPrivilegeEscalation)")
    assert _status(host, expected["pid"]).get("NoNewPrivs") == "1"


def test_capabilities_dropped(host: Any, expected: dict[str, Any]) -> None:
    if not expected["drop_all_capabilities"]:
        pytest.skip("the stack keeps capabilities for this model (hardening.dropAllCapabilities)")
    status = _status(host, expected["pid"])
    assert int(status["CapEff"], 16) == 0, f"effective capabilities {status['CapEff']}"
    assert int(status["CapPrm"], 16) == 0, f"permitted capabilities {status['CapPrm']}"


def test_root_filesystem_is_read_only(host: Any, expected: dict[str, Any]) -> None:
    if _is_local(host):
        pytest.skip("a local process shares the machine's root filesystem: only a container can have it read-only")
    if not expected["read_only_root_filesystem"]:
        pytest.skip("the stack opts out of a read-only root filesystem (hardening.readOnlyRootFilesystem)")
    mounts = str(host.file(f"/proc/{expected['pid']}/mounts").content_string).splitlines()
    root = [line.split() for line in mounts if len(line.split()) > 3 and line.split()[1] == "/"]
    assert root, "no / mount"
    assert "ro" in root[-1][3].split(","), f"/ is mounted {root[-1][3]}"
    probe = host.run("touch /.slm-verify-probe")
    assert probe.rc != 0, "writing to / succeeded"


def _listening(host: Any, pid: int) -> list[tuple[str, int, str]]:
    """(family, port, inode) of every listening TCP socket in the process's network namespace."""
    found = []
    for family in ("tcp", "tcp6"):
        table = host.file(f"/proc/{pid}/net/{family}")
        if not table.exists:
            continue
        for line in str(table.content_string).splitlines()[1:]:
            parts = line.split()
            if len(parts) < 10 or parts[3] != _LISTEN:
                continue
            address, _, port = parts[1].partition(":")
            found.append((address, int(port, 16), parts[9]))
    return found


def _socket_inodes(host: Any, pid: int) -> set[str]:
    links = host.run(f'for f in /proc/{pid}/fd/*; do readlink "$f"; done').stdout
    return {line[len("socket:[") : -1] for line in str(links).split() if line.startswith("socket:[")}


def test_only_expected_ports_listen(host: Any, expected: dict[str, Any]) -> None:
    pid = expected["pid"]
    listeners = _listening(host, pid)
    if expected["listen_scope"] == "process":
        inodes = _socket_inodes(host, pid)
        ports = {port for _address, port, inode in listeners if inode in inodes}
    else:  # every listener reachable from outside the pod; loopback-only helpers are private to it
        ports = {port for address, port, _ in listeners if address not in (_LOOPBACK_V4, _LOOPBACK_V6)}
    allowed = set(expected["ports"])
    assert ports - allowed == set(), f"unexpected listening ports {sorted(ports - allowed)} (allowed {sorted(allowed)})"
    assert expected["ports"][0] in ports, f"the API port {expected['ports'][0]} is not listening"


def test_model_files_are_where_the_engine_expects(host: Any, expected: dict[str, Any]) -> None:
    cache = expected["cache_path"]
    assert host.file(cache).is_directory, f"{cache} is not a directory"
    for pattern in expected["model_files"]:
        glob = any(c in pattern for c in "*?[")
        found = host.run(f"ls -d {shlex.quote(cache)}/{pattern if glob else shlex.quote(pattern)}")
        assert found.rc == 0 and found.stdout.strip(), f"{cache}/{pattern} not found"
    if not expected["model_files"]:
        listing = host.run(f"ls -A {shlex.quote(cache)}")
        assert listing.rc == 0 and listing.stdout.strip(), f"{cache} is empty"
