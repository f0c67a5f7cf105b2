"""API keys checked by the model servers too (authentication in depth): what the plan renders for each engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.model_server.api_keys import (
    AI_GATEWAY_KEY,
    CREDENTIAL_KEY,
    JSON_FILE,
    LINES_FILE,
    METRICS_KEY,
    MOUNT_PATH,
    SERVER_KEY,
    scrape_key,
    secret_data,
    server_key,
    server_key_data,
)
from infra.config.base import KeyPathError
from infra.config.entry_point import parse_api_keys
from infra.config.loader import StackConfigError, validate_stack_config
from infra.config.objects import ENGINES_CHECKING_KEYS, derived_objects
from infra.config.secrets import OFFLINE_SECRET_PLACEHOLDER, SecretValue
from infra.engines import engine_for
from infra.engines.base import ApiKeyFile
from infra.plan.engine import PlanRun, run_program
from infra.plan.render import manifests
from infra.plan.schema import validate_manifests
from infra.platform import deploy
from infra.policy.analyzer import run_policy_pack
from tests.conftest import ROOT
from tests.helpers import keyed_entry_point, of_kind, one, pod_spec

KEYS = {"team-a": "canary-team-a-key-5f0d8c1e", "ci": "canary-ci-key-90b7aa14c3"}
RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
MODELS: list[dict[str, Any]] = [
    {
        "name": "tiny",
        "engine": "llamacpp",
        "modelId": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "resources": RESOURCES,
        "llamacpp": {"gguf": {"file": "model.gguf"}},
    },
    {
        "name": "edge",
        "engine": "onnx",
        "modelId": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "image": {"repository": "registry.example.com/slm-onnx-server", "tag": "0.3.0"},
        "resources": RESOURCES,
    },
    {"name": "chat", "engine": "ollama", "modelId": "qwen3:0.6b", "resources": RESOURCES},
]
LINES_PATH = f"{MOUNT_PATH}/{LINES_FILE}"
JSON_PATH = f"{MOUNT_PATH}/{JSON_FILE}"


def stack(**entry: Any) -> dict[str, Any]:
    """The models behind an entry point; ``entry`` overrides its keys (by default it checks ``KEYS``)."""
    return {
        "environment": "dev",
        "monitoring": {"mode": "existing"},
        **keyed_entry_point(KEYS, **entry),
        "models": MODELS,
    }


_RUNS: dict[str, PlanRun] = {}


def planned(name: str, **entry: Any) -> PlanRun:
    if name not in _RUNS:
        config = validate_stack_config(stack(**entry), name)
        _RUNS[name] = run_program(lambda: deploy(config), name, False)
    return _RUNS[name]


def keyed() -> PlanRun:
    return planned("keyed")


def container(run: PlanRun, model: str) -> dict[str, Any]:
    (server,) = pod_spec(one(run.resources, "Deployment", f"{model}-deployment"))["containers"]
    return dict(server)


def key_volume(run: PlanRun, model: str) -> dict[str, Any] | None:
    volumes = pod_spec(one(run.resources, "Deployment", f"{model}-deployment"))["volumes"]
    return next((v for v in volumes if v["name"] == "api-keys"), None)


def security_policy(run: PlanRun) -> dict[str, Any]:
    (policy,) = of_kind(run.resources, "SecurityPolicy")
    auth: dict[str, Any] = policy.inputs["spec"]["apiKeyAuth"]
    return auth


def test_llamacpp_reads_the_keys_file_it_is_given() -> None:
    server = container(keyed(), "tiny")
    assert server["args"][-2:] == ["--api-key-file", LINES_PATH]
    assert {"name": "api-keys", "mountPath": MOUNT_PATH, "readOnly": True} in server["volumeMounts"]


def test_onnx_reads_the_keys_file_named_by_its_variable() -> None:
    server = container(keyed(), "edge")
    assert {"name": "SLM_ONNX_API_KEYS_FILE", "value": JSON_PATH} in server["env"]
    assert "args" not in server
    assert {"name": "api-keys", "mountPath": MOUNT_PATH, "readOnly": True} in server["volumeMounts"]


@pytest.mark.parametrize(("model", "file"), [("tiny", LINES_FILE), ("edge", JSON_FILE)])
def test_the_keys_are_mounted_read_only_for_the_group_from_a_secret_in_the_models_namespace(
    model: str, file: str
) -> None:
    run = keyed()
    volume = key_volume(run, model)
    assert volume == {
        "name": "api-keys",
        "secret": {"secretName": f"{model}-api-keys", "items": [{"key": file, "path": file}], "defaultMode": 0o440},
    }
    secret = one(run.resources, "Secret", f"{model}-api-keys-secret")
    assert secret.inputs["metadata"]["namespace"] == f"slm-{model}"
    assert secret.inputs["metadata"]["name"] == f"{model}-api-keys"


def test_ollama_cannot_check_keys_and_gets_none() -> None:
    run = keyed()
    assert key_volume(run, "chat") is None
    assert not [s for s in of_kind(run.resources, "Secret") if s.inputs["metadata"]["namespace"] == "slm-chat"]


def test_the_gateway_forwards_the_key_when_a_server_checks_it_and_keeps_the_client_header() -> None:
    auth = security_policy(keyed())
    assert auth["sanitize"] is False
    assert auth["forwardClientIDHeader"] == "x-slm-client"


def test_prometheus_scrapes_llama_server_with_a_key_of_its_own() -> None:
    run = keyed()
    (endpoint,) = one(run.resources, "ServiceMonitor", "monitoring-scrape-tiny").inputs["spec"]["endpoints"]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "tiny-api-keys", "key": METRICS_KEY}}
    # The ONNX server's /metrics is open: no credentials.
    (endpoint,) = one(run.resources, "ServiceMonitor", "monitoring-scrape-edge").inputs["spec"]["endpoints"]
    assert "authorization" not in endpoint


def test_no_key_appears_in_the_plan_and_every_object_passes_the_strict_schemas() -> None:
    run = keyed()
    text = json.dumps([r.inputs for r in run.resources], default=str)
    for key in KEYS.values():
        assert key not in text
    assert scrape_key(KEYS) not in text
    items = manifests(run.resources)
    problems = [(r.path, r.message) for r in validate_manifests(items, "1.35") if r.status == "invalid"]
    assert problems == []
    rendered = json.dumps([item.document for item in items])
    assert not [key for key in (*KEYS.values(), scrape_key(KEYS)) if key in rendered]
    for item in items:
        if item.document["kind"] == "Secret":
            assert "[secret]" in json.dumps(item.document["stringData"])


def test_without_keys_no_server_checks_and_the_gateway_has_no_policy() -> None:
    run = planned("open", apiKeys=None)
    for model in ("tiny", "edge"):
        assert key_volume(run, model) is None
        assert "--api-key-file" not in container(run, model).get("args", [])
    assert of_kind(run.resources, "SecurityPolicy") == []


def test_models_check_keys_false_keeps_the_check_at_the_gateway_alone() -> None:
    run = planned("edge-only", modelsCheckKeys=False)
    for model in ("tiny", "edge"):
        assert key_volume(run, model) is None
    assert security_policy(run)["sanitize"] is True


def test_a_model_not_routed_through_the_entry_point_checks_no_key() -> None:
    run = planned("routed-onnx", models=["edge"])
    assert key_volume(run, "tiny") is None
    assert key_volume(run, "edge") is not None


def test_existing_key_secret_is_mounted_by_name_from_each_models_namespace() -> None:
    run = planned("existing", apiKeys=None, existingApiKeySecret="slm-api-keys")
    for model, file in (("tiny", LINES_FILE), ("edge", JSON_FILE)):
        volume = key_volume(run, model)
        assert volume is not None
        assert volume["secret"]["secretName"] == "slm-api-keys"
        assert volume["secret"]["items"] == [{"key": file, "path": file}]
    assert [s.name for s in of_kind(run.resources, "Secret")] == []
    (endpoint,) = one(run.resources, "ServiceMonitor", "monitoring-scrape-tiny").inputs["spec"]["endpoints"]
    assert endpoint["authorization"]["credentials"] == {"name": "slm-api-keys", "key": METRICS_KEY}
    assert security_policy(run)["sanitize"] is False


def test_file_formats_match_what_each_server_reads() -> None:
    lines = secret_data(json.dumps(KEYS), ApiKeyFile("lines", path_flag="--api-key-file", metrics_need_key=True))
    # llama-server: one key per line (common/arg.cpp), the scrape key among them.
    assert lines[LINES_FILE].splitlines() == [*KEYS.values(), lines[METRICS_KEY]]
    assert lines[METRICS_KEY] == scrape_key(KEYS) and lines[METRICS_KEY] not in KEYS.values()
    # The ONNX server: the JSON object of client name to key (servers/onnx config.py).
    data = secret_data(json.dumps(KEYS), ApiKeyFile("json", path_env="SLM_ONNX_API_KEYS_FILE"))
    assert data == {JSON_FILE: json.dumps(KEYS)}


def test_the_scrape_key_changes_with_any_client_key() -> None:
    assert scrape_key(KEYS) == scrape_key(dict(reversed(KEYS.items())))
    assert scrape_key(KEYS) != scrape_key({**KEYS, "ci": KEYS["ci"] + "x"})


def test_offline_placeholder_formats_like_a_key() -> None:
    data = secret_data(OFFLINE_SECRET_PLACEHOLDER, ApiKeyFile("json", path_env="X"))
    assert json.loads(data[JSON_FILE]) == {"offline-placeholder": OFFLINE_SECRET_PLACEHOLDER}


@pytest.mark.parametrize("key", ["#starts-with-a-hash-mark", "has a space in the middle", "line\nbreak-in-the-key-x"])
def test_keys_a_key_file_cannot_carry_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="visible ASCII"):
        parse_api_keys(json.dumps({"team-a": key}))
    values = stack()
    values["secrets"] = {"gatewayKeys": SecretValue(plaintext=json.dumps({"team-a": key}))}
    with pytest.raises((StackConfigError, KeyPathError)) as caught:
        validate_stack_config(values, "bad-key")
    assert key not in str(caught.value)


VLLM = {"name": "big", "engine": "vllm", "modelId": "Qwen/Qwen3-8B", "gpu": {"count": 1}}


@pytest.mark.parametrize("model", [*MODELS, VLLM], ids=[m["engine"] for m in [*MODELS, VLLM]])
def test_the_config_knows_which_engines_check_keys(model: dict[str, Any]) -> None:
    config = validate_stack_config({**stack(apiKeys=None), "models": [*MODELS, VLLM]}, "engines")
    (parsed,) = [m for m in config.models if m.name == model["name"]]
    engine = engine_for(parsed, config)
    checks = engine.api_key_file is not None or engine.server_key_env is not None
    assert checks == (model["engine"] in ENGINES_CHECKING_KEYS)


def rule_results(run: PlanRun) -> list[tuple[str, str | None]]:
    report = run_policy_pack(run.resources, ROOT / "policies/config/prod.json", {"environment": "prod", "waivers": []})
    return [(r.status, r.resource_name) for r in report.results if r.rule_id == "SLM-SRV-002"]


def test_the_policy_pack_finds_every_key_capable_server_checking_keys() -> None:
    results = rule_results(keyed())
    assert results and {status for status, _ in results} == {"pass"}
    results = rule_results(planned("existing", apiKeys=None, existingApiKeySecret="slm-api-keys"))
    assert {status for status, _ in results} == {"pass"}


def test_the_policy_pack_reports_servers_that_opted_out() -> None:
    results = rule_results(planned("edge-only", modelsCheckKeys=False))
    assert {name for status, name in results if status != "pass"} == {"tiny-deployment", "edge-deployment"}
    assert {status for status, _ in results} - {"pass"} == {"violation"}


def test_the_name_inventory_lists_the_secrets_the_plan_creates() -> None:
    config = validate_stack_config(stack(), "inventory")
    listed = {(o.namespace, o.name) for o in derived_objects(config) if o.kind == "Secret" and o.creates}
    created = {
        (s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]) for s in of_kind(keyed().resources, "Secret")
    }
    assert created == listed
    assert {("slm-tiny", "tiny-api-keys"), ("slm-edge", "edge-api-keys")} <= listed


def vllm_stack(**entry: Any) -> dict[str, Any]:
    return {**stack(**entry), "models": [VLLM]}


def vllm_planned(name: str, **entry: Any) -> PlanRun:
    if name not in _RUNS:
        config = validate_stack_config(vllm_stack(**entry), name)
        _RUNS[name] = run_program(lambda: deploy(config), name, False)
    return _RUNS[name]


def test_vllm_checks_a_key_of_its_own_from_a_secret_which_the_gateway_sends() -> None:
    run = vllm_planned("vllm-keyed")
    server = container(run, "big")
    assert {
        "name": "VLLM_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "big-api-keys", "key": SERVER_KEY}},
    } in server["env"]
    assert not [word for word in server["args"] if "api-key" in word or "api_key" in word]
    assert key_volume(run, "big") is None
    (route_filter,) = of_kind(run.resources, "HTTPRouteFilter")
    assert route_filter.inputs["metadata"]["namespace"] == "slm-big"
    assert route_filter.inputs["spec"]["credentialInjection"] == {
        "header": "Authorization",
        "overwrite": True,
        "credential": {"valueRef": {"group": "", "kind": "Secret", "name": "big-api-keys"}},
    }
    (route,) = of_kind(run.resources, "HTTPRoute")
    (rule,) = route.inputs["spec"]["rules"]
    assert {
        "type": "ExtensionRef",
        "extensionRef": {"group": "gateway.envoyproxy.io", "kind": "HTTPRouteFilter", "name": "big-server-key"},
    } in rule["filters"]
    # The gateway checks the client's key and need not forward it: the model's own key replaces it.
    assert security_policy(run)["sanitize"] is True
    items = manifests(run.resources)
    assert [(r.path, r.status) for r in validate_manifests(items, "1.35") if r.status != "valid"] == []
    rendered = json.dumps([item.document for item in items])
    assert not [key for key in (*KEYS.values(), server_key(KEYS, "big")) if key in rendered]


def test_each_model_key_is_its_own_and_no_client_key() -> None:
    data = server_key_data(json.dumps(KEYS), "big")
    assert data[CREDENTIAL_KEY] == f"Bearer {data[SERVER_KEY]}"
    # What Envoy AI Gateway's BackendSecurityPolicy sends (behind entryPoint.quotas), under the data key it reads.
    assert data[AI_GATEWAY_KEY] == data[SERVER_KEY]
    assert data[SERVER_KEY] not in KEYS.values()
    assert server_key(KEYS, "big") != server_key(KEYS, "small")
    assert server_key(KEYS, "big") != server_key({**KEYS, "ci": KEYS["ci"] + "x"}, "big")


def test_vllm_with_an_existing_key_secret_reads_it_by_name() -> None:
    run = vllm_planned("vllm-existing", apiKeys=None, existingApiKeySecret="slm-api-keys")
    assert {
        "name": "VLLM_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "slm-api-keys", "key": SERVER_KEY}},
    } in container(run, "big")["env"]
    (route_filter,) = of_kind(run.resources, "HTTPRouteFilter")
    assert route_filter.inputs["spec"]["credentialInjection"]["credential"]["valueRef"]["name"] == "slm-api-keys"
    assert [s.name for s in of_kind(run.resources, "Secret")] == []


def test_vllm_checks_no_key_when_models_check_keys_is_false() -> None:
    run = vllm_planned("vllm-gateway-only", modelsCheckKeys=False)
    assert not [e for e in container(run, "big")["env"] if e["name"] == "VLLM_API_KEY"]
    assert of_kind(run.resources, "HTTPRouteFilter") == []
