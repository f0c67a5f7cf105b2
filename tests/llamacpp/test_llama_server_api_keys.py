"""A real llama-server run with the keyed stack's rendered arguments checks the stack's API keys."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from openai import AuthenticationError, OpenAI

from infra.components.model_server.api_keys import scrape_key
from tests.llamacpp.llama_server_helpers import API_KEYS, SERVED_NAME, RunningServer

pytestmark = pytest.mark.xdist_group("llamacpp")


def status(server: RunningServer, path: str, key: str | None = None) -> int:
    request = urllib.request.Request(server.base_url + path)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_the_rendered_arguments_name_the_mounted_key_file(keyed_llama_server: RunningServer) -> None:
    rendered = keyed_llama_server.planned.container["args"]
    assert rendered[-2:] == ["--api-key-file", "/var/run/secrets/slm-deploy/api-keys/api-keys.txt"]
    local = keyed_llama_server.argv[1:]
    differing = {rendered[i - 1] for i, (a, b) in enumerate(zip(local, rendered, strict=True)) if a != b}
    assert differing == {"--model", "--host", "--port", "--api-key-file"}


def test_a_request_without_a_key_or_with_a_wrong_one_is_refused(keyed_llama_server: RunningServer) -> None:
    assert status(keyed_llama_server, "/v1/models") == 401
    assert status(keyed_llama_server, "/v1/models", "not-a-configured-key-000") == 401


@pytest.mark.parametrize("client", sorted(API_KEYS))
def test_each_clients_key_is_accepted(keyed_llama_server: RunningServer, client: str) -> None:
    assert status(keyed_llama_server, "/v1/models", API_KEYS[client]) == 200


def test_the_openai_client_with_a_key_chats_and_without_one_fails(keyed_llama_server: RunningServer) -> None:
    base_url = keyed_llama_server.base_url + "/v1"
    client = OpenAI(base_url=base_url, api_key=API_KEYS["ci"], timeout=180, max_retries=0)
    reply = client.chat.completions.create(
        model=SERVED_NAME, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0
    )
    assert reply.choices[0].message.content
    stranger = OpenAI(base_url=base_url, api_key="not-a-configured-key-000", timeout=30, max_retries=0)
    with pytest.raises(AuthenticationError):
        stranger.models.list()


def test_probes_stay_open_and_prometheus_scrapes_with_its_own_key(keyed_llama_server: RunningServer) -> None:
    assert status(keyed_llama_server, "/health") == 200
    # llama-server asks for a key on /metrics too: the ServiceMonitor sends the scrape key from the Secret.
    assert status(keyed_llama_server, "/metrics") == 401
    assert status(keyed_llama_server, "/metrics", scrape_key(API_KEYS)) == 200
