"""`verify` talks to the stack's cluster (`cluster.context`), not to whatever context is current, unless
`--context` says otherwise, and says which cluster it talks to. Two real HTTP servers stand for two clusters."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra.verify.verify import verify_command

STACK = """config:
  slm-deploy:environment: dev
  slm-deploy:cluster:
    mode: existing
    context: search-cluster
  slm-deploy:models:
    - name: micro
      engine: ollama
      modelId: qwen3:0.6b
      resources:
        requests: {cpu: "1", memory: 2Gi}
        limits: {cpu: "2", memory: 4Gi}
"""


class _Cluster(http.server.ThreadingHTTPServer):
    """An API server that knows no object: every read is a 404, every path it was asked for is kept."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        cluster = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                cluster.paths.append(self.path)
                body = b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def clusters() -> Iterator[dict[str, _Cluster]]:
    servers = {"search-cluster": _Cluster(), "everyday": _Cluster()}
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for thread in threads:
        thread.start()
    yield servers
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture
def project(tmp_path: Path, clusters: dict[str, _Cluster], monkeypatch: pytest.MonkeyPatch) -> Path:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "everyday",
        "clusters": [{"name": name, "cluster": {"server": c.url}} for name, c in clusters.items()],
        "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "me"}} for name in clusters],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.lab.yaml").write_text(STACK)
    return tmp_path


def test_verify_uses_the_stacks_context_not_the_current_one(
    project: Path, clusters: dict[str, _Cluster], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(project, "lab", None, "text", None) in (1, 2)  # nothing is deployed there
    err = capsys.readouterr().err
    assert f"verify: cluster {clusters['search-cluster'].url} (kubeconfig context 'search-cluster', from the " \
        "stack's cluster.context)" in err
    assert clusters["search-cluster"].paths, "the stack's cluster was never asked"
    assert clusters["everyday"].paths == []


def test_context_given_on_the_command_line_wins(
    project: Path, clusters: dict[str, _Cluster], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(project, "lab", "everyday", "text", None) in (1, 2)
    assert "(kubeconfig context 'everyday', from --context)" in capsys.readouterr().err
    assert clusters["everyday"].paths and clusters["search-cluster"].paths == []
