"""The rate limit's Redis, run for real (Debian's redis-server) with the configuration slm-deploy renders.

What the hardened config must do: refuse every command before AUTH, refuse a wrong password, serve the commands
Envoy's rate-limit service sends (INCRBY, EXPIRE in a pipeline, after AUTH), refuse the disabled admin commands,
and write nothing to disk. scripts/run.sh installs redis-server (Debian) when run as root, like promtool.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.components.rate_limit_store import DISABLED_COMMANDS, redis_config
from tests.helpers import installed

PASSWORD = "rate-limit-canary-3c9e1f7a2b"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Client:
    """A minimal RESP client: enough to send commands and read one reply each."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = self.socket.makefile("rb")

    def send(self, *words: str) -> str:
        parts = [f"*{len(words)}\r\n".encode()]
        for word in words:
            data = word.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.socket.sendall(b"".join(parts))
        return self.read()

    def read(self) -> str:
        line = self.reader.readline().decode().rstrip("\r\n")
        if line.startswith("$") and line != "$-1":
            value = self.reader.read(int(line[1:]) + 2).decode()[:-2]
            return value
        return line

    def close(self) -> None:
        self.reader.close()
        self.socket.close()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    server = installed("redis-server", "redis-server")
    folder = tmp_path_factory.mktemp("redis")
    data = folder / "data"
    data.mkdir()
    config = folder / "redis.conf"
    # The rendered file as Redis reads it in the pod, with this folder for the pod's emptyDir; the port and the
    # address are given on the command line (which overrides the file) so that tests never collide.
    config.write_text(redis_config(PASSWORD, data_dir=str(data)))
    port = _free_port()
    process = subprocess.Popen(
        [server, str(config), "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                process.kill()
                pytest.fail(f"redis-server did not start with the rendered config: {output}")
            time.sleep(0.1)
    try:
        yield port, data
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_every_command_needs_the_password(redis: tuple[int, Path]) -> None:
    client = Client(redis[0])
    try:
        assert client.send("PING").startswith("-NOAUTH")
        assert client.send("INCRBY", "k", "1").startswith("-NOAUTH")
        assert client.send("AUTH", "not-the-password").startswith("-WRONGPASS")
        assert client.send("AUTH", PASSWORD) == "+OK"
        assert client.send("PING") == "+PONG"
    finally:
        client.close()


def test_the_rate_limit_services_commands_work_after_auth(redis: tuple[int, Path]) -> None:
    """envoyproxy/ratelimit's Redis cache: INCRBY the window's key by the cost, EXPIRE it with the window."""
    client = Client(redis[0])
    try:
        assert client.send("AUTH", PASSWORD) == "+OK"
        key = "slm-deploy_x-slm-client_team-a_1733529600"
        assert client.send("INCRBY", key, "1200") == ":1200"
        assert client.send("INCRBY", key, "300") == ":1500"
        assert client.send("EXPIRE", key, "60") == ":1"
        ttl = int(client.send("TTL", key).lstrip(":"))
        assert 0 < ttl <= 60
    finally:
        client.close()


def test_admin_commands_are_disabled(redis: tuple[int, Path]) -> None:
    client = Client(redis[0])
    try:
        assert client.send("AUTH", PASSWORD) == "+OK"
        for command in DISABLED_COMMANDS:
            reply = client.send(command, "x") if command not in ("FLUSHALL", "FLUSHDB") else client.send(command)
            assert reply.startswith("-ERR unknown command"), (command, reply)
    finally:
        client.close()


def test_nothing_is_written_to_disk(redis: tuple[int, Path]) -> None:
    client = Client(redis[0])
    try:
        assert client.send("AUTH", PASSWORD) == "+OK"
        for index in range(200):
            client.send("INCRBY", f"counter-{index}", "1")
        # BGSAVE would write: with `save ""` nothing is scheduled, and no AOF is kept.
        time.sleep(0.5)
    finally:
        client.close()
    assert list(redis[1].iterdir()) == []
