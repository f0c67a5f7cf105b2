"""Specs of the Envoy AI Gateway and rate-limit objects behind per-client quotas (docs/quotas.md).

Definitions read (search tool, github.com/envoyproxy/ai-gateway at commit 06c04836, API v1beta1 of the 1.x line):
``api/v1beta1/ai_gateway_route.go`` (AIGatewayRoute: parentRefs, hostnames, rules with ``x-ai-eg-model`` header
matches, ``llmRequestCosts`` stored in the dynamic metadata namespace ``io.envoy.ai_gateway``),
``api/v1beta1/ai_service_backend.go`` (AIServiceBackend: ``schema`` and a ``backendRef`` that must be an Envoy
Gateway ``Backend``) and ``api/v1beta1/shared_types.go`` (VersionedAPISchema, LLMRequestCost).
Envoy Gateway (the project pins v1.9.3): ``api/v1alpha1/ratelimit_types.go`` (global rules, ``shared``, costs
from metadata, units up to Month) and ``internal/xds/translator/httpfilters.go`` (filter order: api_key_auth 7,
ext_proc 100+, rbac 301, ratelimit 303); ai-gateway's ``internal/extensionserver/post_translate_modify.go`` inserts
its ext_proc before the first rbac/ratelimit filter, so the authorization rules and the rate limit both see the
client id (set by api_key_auth) and the model header (set by the AI Gateway filter).

A model server that checks a key of its own (vLLM) gets it from a ``BackendSecurityPolicy`` of type ``APIKey``
(``api/v1beta1/backendsecurity_policy.go``, read at commit 0b0bfb29: targets are AIServiceBackends or InferencePools
of its namespace, the Secret's data key is ``apiKey``; ``internal/backendauth/api_key.go`` sends it as
``Authorization: Bearer <key>``; InferencePool targets since envoyproxy/ai-gateway#1745).

A request over a budget is refused by Envoy's rate-limit filter with a 429 local reply carrying the draft-03
``X-RateLimit-*`` headers (Envoy Gateway turns them on unless ``disableRateLimitHeaders``:
``internal/xds/translator/ratelimit.go``). The policy's ``responseOverride`` rewrites that reply's body (Envoy's
custom_response filter, first in Envoy Gateway's filter order so it sees local replies; its body is an Envoy
format string, envoyproxy/gateway#6297) into an OpenAI-style error naming the client and the budget.
"""

from __future__ import annotations

import json
from typing import Any

from infra.config.quotas import QuotasConfig

AI_GATEWAY_GROUP = "aigateway.envoyproxy.io"
AI_GATEWAY_API = f"{AI_GATEWAY_GROUP}/v1beta1"
#: The header the AI Gateway filter fills with the request body's ``model`` before routing.
MODEL_HEADER = "x-ai-eg-model"
#: Dynamic metadata namespace and key the AI Gateway filter writes each response's token count to.
COST_NAMESPACE = "io.envoy.ai_gateway"
TOTAL_TOKENS_KEY = "llm_total_token"
#: The costs captured per request (prompt, completion, both): the budgets spend the total.
LLM_REQUEST_COSTS = [
    {"metadataKey": "llm_input_token", "type": "InputToken"},
    {"metadataKey": "llm_output_token", "type": "OutputToken"},
    {"metadataKey": TOTAL_TOKENS_KEY, "type": "TotalToken"},
]


def ai_route_spec(
    parent: dict[str, str], hostname: str, served_name: str, backends: list[dict[str, Any]], timeout: str
) -> dict[str, Any]:
    """One model's AIGatewayRoute: requests whose ``model`` is ``served_name`` go to ``backends`` (split by their
    weights, as in the Gateway API); tokens counted."""
    return {
        "parentRefs": [parent],
        "hostnames": [hostname],
        "rules": [
            {
                "matches": [{"headers": [{"type": "Exact", "name": MODEL_HEADER, "value": served_name}]}],
                "backendRefs": backends,
                "timeouts": {"request": timeout},
            }
        ],
        "llmRequestCosts": LLM_REQUEST_COSTS,
    }


def service_backend_spec(backend: str, api_base_path: str) -> dict[str, Any]:
    """AIServiceBackend: the engine speaks the OpenAI API under ``api_base_path``, at the Envoy Gateway Backend."""
    return {
        "schema": {"name": "OpenAI", "prefix": api_base_path},
        "backendRef": {"group": "gateway.envoyproxy.io", "kind": "Backend", "name": backend},
    }


def backend_spec(service: str, namespace: str, port: int) -> dict[str, Any]:
    """Envoy Gateway Backend: the model's ClusterIP Service by its cluster DNS name."""
    return {"endpoints": [{"fqdn": {"hostname": f"{service}.{namespace}.svc.cluster.local", "port": port}}]}


def authorization(quotas: QuotasConfig, client_header: str, served: dict[str, str]) -> dict[str, Any]:
    """SecurityPolicy ``authorization``: each client may call its models only; anything else is 403.

    ``served`` maps a model's config name to its served name (the ``x-ai-eg-model`` value). Headers of one principal
    must all match (Envoy Gateway: ``principal.headers``).
    """
    rules = []
    for client, quota in sorted(quotas.clients.items()):
        headers: list[dict[str, Any]] = [{"name": client_header, "values": [client]}]
        if not quota.all_models:
            headers.append({"name": MODEL_HEADER, "values": sorted(served[m] for m in quota.models)})
        rules.append({"name": _rule_name(client), "action": "Allow", "principal": {"headers": headers}})
    return {"defaultAction": "Deny", "rules": rules}


def token_budget_rules(quotas: QuotasConfig, client_header: str) -> list[dict[str, Any]]:
    """Global rate-limit rules: one per client and window, spent by each response's total tokens.

    The request itself costs 0 (it is admitted while the bucket is not empty); the response's token count is taken
    from the AI Gateway's metadata. ``shared``: one bucket per client across every model route of the Gateway.
    """
    rules = []
    for client, quota in sorted(quotas.clients.items()):
        for unit, tokens in quota.budgets.items():
            rules.append(
                {
                    "clientSelectors": [{"headers": [{"type": "Exact", "name": client_header, "value": client}]}],
                    "limit": {"requests": tokens, "unit": unit},
                    "cost": {
                        "request": {"from": "Number", "number": 0},
                        "response": {
                            "from": "Metadata",
                            "metadata": {"namespace": COST_NAMESPACE, "key": TOTAL_TOKENS_KEY},
                        },
                    },
                    "shared": True,
                }
            )
    return rules


def server_key_policy_spec(targets: list[dict[str, str]], secret: str) -> dict[str, Any]:
    """BackendSecurityPolicy: the AI Gateway sends the model's own key (the Secret's ``apiKey``) to ``targets``
    (AIServiceBackends or an InferencePool of the model's namespace), in place of the client's, after the
    gateway has checked the client's."""
    return {"targetRefs": targets, "type": "APIKey", "apiKey": {"secretRef": {"name": secret}}}


#: Envoy's draft-03 rate-limit headers on the 429 (``X-RateLimit-Limit``: the exhausted budget's tokens, then every
#: budget of the client as ``<tokens>;w=<window seconds>``; ``X-RateLimit-Reset``: seconds until it refills).
LIMIT_HEADER = "X-RATELIMIT-LIMIT"
RESET_HEADER = "X-RATELIMIT-RESET"
#: How the ``w=`` of each budget reads (window seconds, as Envoy writes them): named in the 429's message.
WINDOW_LEGEND = "w=60 is tokensPerMinute, w=86400 tokensPerDay, a longer w tokensPerMonth"


def budget_exceeded_response(client_header: str) -> list[dict[str, Any]]:
    """``responseOverride`` of the token budgets: the 429 names the client and the budget it spent.

    The spent budget is the first number of ``X-RateLimit-Limit``; a client's budgets differ (checked by the
    config), so that number names one, and its window is among the ``<tokens>;w=<seconds>`` pairs that follow.
    The body is OpenAI's error shape (``type: tokens``, ``code: rate_limit_exceeded``), so OpenAI clients back off
    as they do for OpenAI. What is substituted is a client name (``[-._a-zA-Z0-9]``) and numbers: the JSON stays
    valid.
    """
    message = (
        f"Token budget exhausted for client %REQ({client_header})%; it refills in %RESP({RESET_HEADER})% s. "
        f"X-RateLimit-Limit: %RESP({LIMIT_HEADER})% (the spent budget's tokens first, then each budget of the "
        f"client as tokens;w=window seconds: {WINDOW_LEGEND})."
    )
    body = json.dumps(
        {"error": {"message": message, "type": "tokens", "param": None, "code": "rate_limit_exceeded"}},
        separators=(",", ":"),
    )
    return [
        {
            "match": {"statusCodes": [{"type": "Value", "value": 429}]},
            # Envoy's own replies only (the rate limit's): a model server's 429 passes unchanged.
            "source": "Local",
            "response": {"contentType": "application/json", "body": {"type": "Inline", "inline": body}},
        }
    ]


def _rule_name(client: str) -> str:
    """An authorization rule's name from the client's (lower case, dots and underscores as dashes)."""
    return "client-" + client.lower().replace(".", "-").replace("_", "-")
