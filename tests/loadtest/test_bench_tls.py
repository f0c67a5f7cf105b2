"""`bench` against a real HTTPS server whose certificate a private CA signed (trustme): the CA given with
--ca-cert, SSL_CERT_FILE or REQUESTS_CA_BUNDLE is trusted; without it the TLS failure is named; --insecure
skips the check, saying so; a server that is down is said to be down."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from infra.loadtest.bench import bench_command


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, json.dumps({"data": [{"id": "tls-model"}]}).encode(), "application/json")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        chunks = [{"choices": [{"delta": {"content": word}}]} for word in ("calm", " sea")]
        chunks.append({"choices": [], "usage": {"completion_tokens": 2}})
        body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
        self._send(200, body.encode(), "text/event-stream")

    def log_message(self, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if context is not None else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}/v1"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_url(ca: trustme.CA) -> Iterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server, url = _serve(context)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(autouse=True)
def _no_ca_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def _bench(url: str, capsys: pytest.CaptureFixture[str], **tls: object) -> tuple[int, str, str]:
    code = bench_command(url, None, "1", 2, None, "json", 4, **tls)  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    return code, out, err


def test_a_private_ca_is_refused_by_name_without_its_certificate(
    https_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _bench(https_url, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: TLS verification of 127.0.0.1:") and err.count("\n") == 1
    assert "certificate verify failed" in err or "unable to get local issuer certificate" in err
    assert "trusting the system's trust store" in err and "--ca-cert" in err
    assert "names none" not in err


def test_ca_cert_trusts_the_private_ca(https_url: str, ca_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _bench(https_url, capsys, ca_cert=ca_file)
    assert code == 0
    data = json.loads(out)
    assert data["model"] == "tls-model" and data["levels"][0]["completed"] == 2
    assert "ttftP50Ms" in data["levels"][0] and "ttft_p50_ms" not in data["levels"][0]


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_the_ca_bundle_variables_are_honoured(
    https_url: str, ca_file: Path, variable: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, str(ca_file))
    code, out, _ = _bench(https_url, capsys)
    assert code == 0 and json.loads(out)["levels"][0]["errors"] == 0


def test_insecure_skips_the_check_and_says_so(https_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _bench(https_url, capsys, insecure=True)
    assert code == 0
    assert "warning: --insecure" in err


def test_a_server_that_is_down_is_said_to_be_down(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = _bench(f"http://127.0.0.1:{port}/v1", capsys)
    assert code == 2
    assert err == f"error: cannot reach 127.0.0.1:{port}: connection refused (is the server running, and is the " \
        "port right?)\n"


def test_https_to_a_plain_http_server_is_a_tls_failure(capsys: pytest.CaptureFixture[str]) -> None:
    server, url = _serve(None)
    try:
        code, _, err = _bench(url.replace("http://", "https://"), capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2 and err.startswith("error: TLS handshake with 127.0.0.1:")


def test_a_missing_ca_file_is_bad_input(https_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _bench(https_url, capsys, ca_cert=tmp_path / "nope.pem")
    assert code == 2 and err == f"error: --ca-cert {tmp_path / 'nope.pem'}: no such file\n"
