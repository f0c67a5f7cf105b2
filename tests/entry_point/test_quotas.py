"""entryPoint.quotas: config errors at their key, the rendered allow-lists, budgets and Redis, the pack's verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.components.entry_point import CLIENT_ID_HEADER
from infra.config.loader import StackConfigError, validate_stack_config
from infra.config.quotas import REDIS_NAME
from infra.config.secrets import SecretValue
from infra.config.stack import StackConfig
from infra.gateway.ai_gateway import MODEL_HEADER, TOTAL_TOKENS_KEY
from infra.plan.engine import PlanRun, run_program
from infra.platform import deploy
from tests.helpers import keyed_entry_point

KEY_A = "team-a-key-0123456789abcdef"
KEY_CI = "ci-key-0123456789abcdef0123"
REDIS_PASSWORD = "redis-canary-7f3e9a1c5b2d"
QUOTAS: dict[str, Any] = {
    "clients": {
        "team-a": {"models": ["qwen3"], "tokensPerMinute": 1000, "tokensPerDay": 50000},
        "ci": {"models": ["phi4-mini", "qwen3"], "tokensPerMonth": 900000},
    },
    "redis": {"password": "redisPassword"},
}


def stack_data(environment: str = "dev", **entry: Any) -> dict[str, Any]:
    # modelsCheckKeys keeps its default: each vLLM server checks a key of its own, which the AI Gateway sends.
    keyed = keyed_entry_point({"team-a": KEY_A, "ci": KEY_CI}, quotas=QUOTAS, installController=True, **entry)
    return {
        "environment": environment,
        "secrets": {**keyed["secrets"], "redisPassword": SecretValue(plaintext=REDIS_PASSWORD)},
        "entryPoint": keyed["entryPoint"],
        "models": [
            {"name": "phi4-mini", "engine": "vllm", "modelId": "microsoft/Phi-4-mini-instruct", "gpu": {"count": 1}},
            {
                "name": "qwen3",
                "engine": "vllm",
                "modelId": "Qwen/Qwen3-8B",
                "servedModelName": "qwen3-8b",
                "gpu": {"count": 1},
            },
        ],
    }


def with_quotas(quotas: dict[str, Any], **entry: Any) -> dict[str, Any]:
    data = stack_data(**entry)
    data["entryPoint"]["quotas"] = quotas
    return data


def key_error(data: dict[str, Any]) -> str:
    """The loader's one-line message (``test: slm-deploy:<key path>: <message>``)."""
    with pytest.raises(StackConfigError) as caught:
        validate_stack_config(data, "test")
    return str(caught.value)


def test_an_unrouted_model_is_refused_at_its_list_index() -> None:
    quotas = {**QUOTAS, "clients": {"team-a": {"models": ["qwen3", "llama"], "tokensPerDay": 10}}}
    error = key_error(with_quotas(quotas))
    assert "slm-deploy:entryPoint.quotas.clients.team-a.models[1]: names model 'llama', which is not routed" in error


def test_a_client_without_a_key_is_refused_by_name() -> None:
    quotas = {**QUOTAS, "clients": {"team-b": {"models": ["qwen3"], "tokensPerDay": 10}}}
    error = key_error(with_quotas(quotas))
    assert "slm-deploy:entryPoint.quotas.clients.team-b: client 'team-b' has no key" in error
    assert KEY_A not in error and KEY_CI not in error


def test_quotas_need_api_keys() -> None:
    data = stack_data(apiKeys=None)
    assert "slm-deploy:entryPoint.quotas.clients: quotas are per API-key client" in key_error(data)


def test_redis_needs_its_own_namespace_and_a_known_secret() -> None:
    error = key_error(with_quotas({**QUOTAS, "redis": {"password": "redisPassword", "namespace": "slm-gateway"}}))
    assert "slm-deploy:entryPoint.quotas.redis.namespace: namespace 'slm-gateway' is the entry point's" in error
    error = key_error(with_quotas({**QUOTAS, "redis": {"password": "nope"}}))
    assert "slm-deploy:entryPoint.quotas.redis.password: names secret 'nope'" in error


def test_a_short_redis_password_is_refused_without_quoting_it() -> None:
    data = stack_data()
    data["secrets"]["redisPassword"] = SecretValue(plaintext="short-pw")
    error = key_error(data)
    assert "slm-deploy:secrets.redisPassword: the Redis password must be at least 16 characters" in error
    assert "short-pw" not in error


def test_the_wildcard_stands_alone() -> None:
    quotas = {**QUOTAS, "clients": {"ci": {"models": ["*", "qwen3"]}}}
    assert "slm-deploy:entryPoint.quotas.clients.ci.models: " in key_error(with_quotas(quotas))


def test_the_cli_names_the_stack_file_and_key_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.bad.yaml").write_text(
        "config:\n  slm-deploy:environment: dev\n  slm-deploy:entryPoint:\n    enabled: true\n"
        "    hostname: llm.example.com\n    tls: {secretName: llm-tls}\n    existingApiKeySecret: keys\n"
        "    quotas:\n      clients:\n        ci: {models: [nope], tokensPerDay: 5}\n"
        "      redis: {password: redisPassword}\n"
        "  slm-deploy:models:\n    - {name: qwen3, engine: vllm, modelId: Qwen/Qwen3-8B, gpu: {count: 1}}\n"
    )
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "Pulumi.bad.yaml: slm-deploy:entryPoint.quotas.clients.ci.models[0]: names model 'nope'" in lines[0]


@pytest.fixture(scope="module")
def run() -> PlanRun:
    config: StackConfig = validate_stack_config(stack_data(), "test")
    return run_program(lambda: deploy(config), "test", True)


def by_kind(run: PlanRun, kind: str) -> list[dict[str, Any]]:
    return [r.inputs for r in run.resources if r.inputs.get("kind") == kind]


def test_models_are_routed_by_served_name_with_token_costs_and_no_path_routes(run: PlanRun) -> None:
    assert by_kind(run, "HTTPRoute") == []
    routes = {r["metadata"]["name"]: r["spec"] for r in by_kind(run, "AIGatewayRoute")}
    assert set(routes) == {"phi4-mini", "qwen3"}
    match = routes["qwen3"]["rules"][0]["matches"][0]["headers"][0]
    assert match == {"type": "Exact", "name": MODEL_HEADER, "value": "qwen3-8b"}
    assert {"metadataKey": TOTAL_TOKENS_KEY, "type": "TotalToken"} in routes["qwen3"]["llmRequestCosts"]
    backends = {b["metadata"]["name"]: b["spec"] for b in by_kind(run, "Backend")}
    assert backends["qwen3"]["endpoints"][0]["fqdn"]["hostname"].startswith("qwen3.")


def test_each_client_may_call_its_models_only(run: PlanRun) -> None:
    [policy] = by_kind(run, "SecurityPolicy")
    authorization = policy["spec"]["authorization"]
    assert authorization["defaultAction"] == "Deny"
    rules = {r["name"]: r["principal"]["headers"] for r in authorization["rules"]}
    assert rules["client-team-a"] == [
        {"name": CLIENT_ID_HEADER, "values": ["team-a"]},
        {"name": MODEL_HEADER, "values": ["qwen3-8b"]},
    ]
    assert rules["client-ci"][1]["values"] == sorted([run_served("phi4-mini", run), "qwen3-8b"])


def run_served(model: str, run: PlanRun) -> str:
    """The served name the render routes ``model`` by (its AIGatewayRoute's header match)."""
    [route] = [r for r in by_kind(run, "AIGatewayRoute") if r["metadata"]["name"] == model]
    return str(route["spec"]["rules"][0]["matches"][0]["headers"][0]["value"])


def test_each_budget_is_a_shared_global_rule_spent_by_response_tokens(run: PlanRun) -> None:
    [policy] = by_kind(run, "BackendTrafficPolicy")
    rules = policy["spec"]["rateLimit"]["global"]["rules"]
    limits = {
        (r["clientSelectors"][0]["headers"][0]["value"], r["limit"]["unit"]): r["limit"]["requests"] for r in rules
    }
    assert limits == {("ci", "Month"): 900000, ("team-a", "Minute"): 1000, ("team-a", "Day"): 50000}
    for rule in rules:
        assert rule["shared"] is True
        assert rule["cost"]["request"] == {"from": "Number", "number": 0}
        assert rule["cost"]["response"]["metadata"]["key"] == TOTAL_TOKENS_KEY


def test_redis_is_hardened_in_its_own_namespace(run: PlanRun) -> None:
    [deployment] = [d for d in by_kind(run, "Deployment") if d["metadata"]["name"] == REDIS_NAME]
    assert deployment["metadata"]["namespace"] == "slm-ratelimit"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["command"] == ["redis-server", "/etc/redis/redis.conf"]
    assert ":" in container["image"] and not container["image"].endswith(":latest")
    policies = {
        p["metadata"]["name"]: p["spec"]
        for p in by_kind(run, "NetworkPolicy")
        if p["metadata"]["namespace"] == "slm-ratelimit"
    }
    assert set(policies) == {"default-deny", "allow-rate-limit-ingress"}
    [peer] = policies["allow-rate-limit-ingress"]["ingress"][0]["from"]
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "envoy-ratelimit"}


def test_the_controller_values_point_the_rate_limit_at_redis_with_its_password(run: PlanRun) -> None:
    [release] = [r.inputs for r in run.resources if r.name == "entry-point-controller"]
    gateway = release["values"]["config"]["envoyGateway"]
    assert gateway["rateLimit"]["backend"]["redis"]["url"] == f"{REDIS_NAME}.slm-ratelimit.svc.cluster.local:6379"
    patch = gateway["provider"]["kubernetes"]["rateLimitDeployment"]["patch"]["value"]
    [env] = patch["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env["name"] == "REDIS_AUTH" and env["valueFrom"]["secretKeyRef"]["name"] == REDIS_NAME
    # The controller and the rate-limit service run at the system priority, like the proxies.
    rate_limit = gateway["provider"]["kubernetes"]["rateLimitDeployment"]
    assert rate_limit["pod"]["priorityClassName"] == release["values"]["deployment"]["priorityClassName"]
    assert release["values"]["deployment"]["priorityClassName"] == "slm-deploy-system"


def test_no_secret_value_appears_in_recorded_inputs(run: PlanRun) -> None:
    text = json.dumps([r.inputs for r in run.resources], default=str)
    for secret in (REDIS_PASSWORD, KEY_A, KEY_CI):
        assert secret not in text


def test_each_vllm_server_gets_its_own_key_from_the_ai_gateway(run: PlanRun) -> None:
    """Behind quotas the servers check keys too: the AI Gateway sends each vLLM model its own key (a
    BackendSecurityPolicy on the model's AIServiceBackend, from the Secret's apiKey), not the HTTPRouteFilter."""
    policies = {p["metadata"]["namespace"]: p["spec"] for p in by_kind(run, "BackendSecurityPolicy")}
    assert policies["slm-qwen3"] == {
        "targetRefs": [{"group": "aigateway.envoyproxy.io", "kind": "AIServiceBackend", "name": "qwen3"}],
        "type": "APIKey",
        "apiKey": {"secretRef": {"name": "qwen3-api-keys"}},
    }
    assert set(policies) == {"slm-phi4-mini", "slm-qwen3"}
    assert by_kind(run, "HTTPRouteFilter") == []
    [deployment] = [d for d in by_kind(run, "Deployment") if d["metadata"]["name"] == "qwen3"]
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    [key] = [v for v in server["env"] if v["name"] == "VLLM_API_KEY"]
    assert key["valueFrom"]["secretKeyRef"] == {"name": "qwen3-api-keys", "key": "server-key"}
    # Only one-key servers here: the gateway checks the client's key and need not forward it.
    [security] = by_kind(run, "SecurityPolicy")
    assert security["spec"]["apiKeyAuth"]["sanitize"] is True


def test_a_model_behind_an_inference_pool_gets_its_key_on_the_pool() -> None:
    data = stack_data()
    data["models"][1] |= {"replicas": 2, "inferencePool": {"enabled": True}, "cache": {"accessMode": "ReadWriteMany"}}
    config = validate_stack_config(data, "test")
    run = run_program(lambda: deploy(config), "test", True)
    [policy] = [p for p in by_kind(run, "BackendSecurityPolicy") if p["metadata"]["namespace"] == "slm-qwen3"]
    assert policy["spec"]["targetRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "qwen3"}
    ]


def test_a_429_names_the_client_and_the_budget_it_spent(run: PlanRun) -> None:
    """Envoy's rate-limit reply is rewritten into OpenAI's error shape; what Envoy substitutes (the client's name,
    the draft-03 X-RateLimit headers) keeps it valid JSON."""
    [policy] = by_kind(run, "BackendTrafficPolicy")
    [override] = policy["spec"]["responseOverride"]
    assert override["match"] == {"statusCodes": [{"type": "Value", "value": 429}]}
    assert override["source"] == "Local"  # the rate limit's reply, not a model server's
    body = override["response"]["body"]["inline"]
    substituted = (
        body.replace(f"%REQ({CLIENT_ID_HEADER})%", "team-a")
        .replace("%RESP(X-RATELIMIT-LIMIT)%", "1000, 1000;w=60, 50000;w=86400")
        .replace("%RESP(X-RATELIMIT-RESET)%", "37")
    )
    error = json.loads(substituted)["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    assert "client team-a" in error["message"] and "1000, 1000;w=60" in error["message"]
    assert "w=60 is tokensPerMinute" in error["message"] and "refills in 37 s" in error["message"]
    assert override["response"]["contentType"] == "application/json"


def test_a_longer_windows_budget_must_be_larger() -> None:
    """The 429 names the spent budget by its tokens, so one client's budgets differ; a longer window's budget at or
    below a shorter one's would also make the shorter one dead."""
    clients = {"team-a": {"models": ["qwen3"], "tokensPerMinute": 5000, "tokensPerMonth": 5000}}
    error = key_error(with_quotas({**QUOTAS, "clients": clients}))
    assert (
        "slm-deploy:entryPoint.quotas.clients.team-a: tokensPerMonth (5000) must be more than tokensPerMinute "
        "(5000), or tokensPerMinute never limits" in error
    )


def level_report(data: dict[str, Any], level: str) -> set[tuple[str, str, str]]:
    """(policy, resource, message) of every violation of the pack at ``level`` for the stack ``data``."""
    from infra.policy.analyzer import run_policy_pack
    from tests.conftest import ROOT

    config = validate_stack_config(data, "test")
    run = run_program(lambda: deploy(config), "test", True)
    settings = json.loads((ROOT / "policies" / "config" / f"{level}.json").read_text())
    report = run_policy_pack(run.resources, settings, {"environment": level, "waivers": []})
    return {
        (r.policy_name, r.resource_name or "", r.message.splitlines()[-1])
        for r in report.results
        if r.status == "violation"
    }


QUOTA_RULES = {"model-allow-list", "client-token-budget", "rate-limit-store-hardened"}


def test_the_rendered_quotas_and_redis_pass_the_pack_at_prod() -> None:
    """Prod is the strictest level: nothing about the quota objects or Redis is refused there (Redis's single
    replica is reported by the availability rules, which a prod stack answers with a waiver or by accepting it)."""
    found = level_report(stack_data("prod"), "prod")
    assert {f for f in found if f[0] in QUOTA_RULES} == set()
    redis = {f[0] for f in found if f[1].startswith("rate-limit-store")}
    assert redis <= {"min-replicas", "pod-disruption-budget", "zone-topology-spread", "image-tag-pinned"}


def test_prod_refuses_a_client_allowed_every_model_or_without_a_budget() -> None:
    quotas = {**QUOTAS, "clients": {**QUOTAS["clients"], "ci": {"models": ["*"]}}}
    found = {(policy, message) for policy, _, message in level_report(with_quotas(quotas), "prod")}
    assert (
        "model-allow-list",
        "authorization rule client-ci lets client ci call every model: list its models [subject: ci]",
    ) in found
    assert ("client-token-budget", "client ci is allowed at the gateway but has no token budget [subject: ci]") in found


def test_diff_names_the_client_whose_models_or_budget_changed() -> None:
    from infra.config.quotas import QuotasConfig
    from infra.gateway.ai_gateway import authorization, token_budget_rules
    from infra.gitops.diff import field_changes

    served = {"phi4-mini": "phi-4-mini", "qwen3": "qwen3-8b"}
    before = QuotasConfig.model_validate(QUOTAS)
    changed = {**QUOTAS["clients"], "team-a": {"models": ["qwen3", "phi4-mini"], "tokensPerMinute": 2000}}
    after = QuotasConfig.model_validate({**QUOTAS, "clients": changed})

    def policy(quotas: QuotasConfig) -> dict[str, Any]:
        return {"spec": {"authorization": authorization(quotas, CLIENT_ID_HEADER, served)}}

    paths = {change.path for change in field_changes(policy(before), policy(after))}
    assert "spec.authorization.rules[name=client-team-a].principal.headers[name=x-ai-eg-model].values[0]" in paths

    def budgets(quotas: QuotasConfig) -> dict[str, Any]:
        return {"spec": {"rateLimit": {"global": {"rules": token_budget_rules(quotas, CLIENT_ID_HEADER)}}}}

    changes = field_changes(budgets(before), budgets(after))
    assert any(c.old == 1000 and c.new == 2000 for c in changes)
    assert any(c.kind == "removed" and c.path.startswith("spec.rateLimit.global.rules[") for c in changes)


def test_the_chat_ui_client_needs_its_own_quota() -> None:
    data = stack_data()
    data["chatUi"] = {
        "enabled": True,
        "hostname": "chat.example.com",
        "sessionSecret": "session",
        "apiKeyClient": "ui",
        "tls": {"secretName": "chat-tls"},
    }
    data["secrets"]["session"] = SecretValue(plaintext="s" * 40)
    data["secrets"]["gatewayKeys"] = SecretValue(
        plaintext=json.dumps({"team-a": KEY_A, "ci": KEY_CI, "ui": "ui-key-0123456789abcdef"})
    )
    error = key_error(data)
    assert "slm-deploy:chatUi.apiKeyClient: 'ui' has no entry under entryPoint.quotas.clients" in error


def test_a_canarys_revisions_are_weighted_backends_of_the_models_ai_route() -> None:
    data = stack_data()
    data["models"][1]["versions"] = {
        "stable": {"name": "v1", "weight": 90},
        "canary": {"name": "v2", "weight": 10, "vllm": {"maxNumSeqs": 64}},
    }
    data["models"][1]["cache"] = {"accessMode": "ReadWriteMany", "storageClass": "azurefile-csi-premium"}
    config = validate_stack_config(data, "test")
    run = run_program(lambda: deploy(config), "test", True)
    [route] = [r for r in by_kind(run, "AIGatewayRoute") if r["metadata"]["name"] == "qwen3"]
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert sorted(ref["weight"] for ref in refs) == [10, 90]
    backends = {b["metadata"]["name"] for b in by_kind(run, "AIServiceBackend")}
    assert {ref["name"] for ref in refs} <= backends
    assert by_kind(run, "HTTPRoute") == []


def test_a_model_behind_quotas_cannot_scale_to_zero_yet() -> None:
    data = stack_data()
    data["keda"] = {"install": True, "httpAddOn": {"install": True}}
    data["models"][1]["autoscaling"] = {
        "enabled": True,
        "backend": "keda",
        "minReplicas": 0,
        "maxReplicas": 2,
        "scaleToZero": {"enabled": True},
    }
    data["models"][1]["cache"] = {"accessMode": "ReadWriteMany", "storageClass": "azurefile-csi-premium"}
    error = key_error(data)
    assert "slm-deploy:models[1].autoscaling.scaleToZero.enabled: a model behind entryPoint.quotas cannot" in error
