"""What Envoy Gateway makes of the entry point's objects: its own translator (``egctl x translate``, built from the
release pinned in tools/versions.env) turns a render into the Envoy configuration the proxies would get.

No Envoy runs here, so this is as close to the data plane as the project gets: the filters, their order and their
settings are Envoy Gateway's, read from its xDS output, not from the project's reading of its sources.

The input is the render's Gateway API and Envoy Gateway objects, plus what other systems provide in a cluster:

* the TLS Secret (cert-manager issues it; here a self-signed certificate made with openssl) and the API-key
  Secrets (synced from a vault; here test keys);
* each Service's cluster IP (the API server assigns one; egctl's translator routes to it when no EndpointSlice
  is given);
* the listener admits routes from every namespace instead of the render's namespace selector: egctl's file
  loader keeps a Namespace's name but not its labels (``internal/gatewayapi/resource/load.go``), so the
  ``kubernetes.io/metadata.name`` label the API server sets is missing and no selector could match;
* behind quotas, an HTTPRoute per AIGatewayRoute carrying the same parent, host, model-header match and
  backends: Envoy AI Gateway's controller makes that route in a cluster; Envoy Gateway alone does not know the
  kind. What is checked there is Envoy Gateway's part (key check, allow-lists, budgets, the 429).
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.entry_point import CLIENT_ID_HEADER
from infra.gateway.ai_gateway import COST_NAMESPACE, MODEL_HEADER, TOTAL_TOKENS_KEY, budget_exceeded_response
from tests.cluster.conftest import built_tools
from tests.cluster.renders import Rendered

#: The kinds Envoy Gateway reads (the rest of a render is not its business).
GATEWAY_KINDS = frozenset(
    {
        "GatewayClass",
        "Gateway",
        "EnvoyProxy",
        "SecurityPolicy",
        "BackendTrafficPolicy",
        "HTTPRoute",
        "HTTPRouteFilter",
        "Backend",
        "ReferenceGrant",
        "Service",
        "Namespace",
    }
)
TEST_KEYS = {"evaluation": "evaluation-key-0123456789", "apps-chat": "apps-chat-key-0123456789"}
MODEL_CREDENTIAL = "Bearer model-key-0123456789abcdef"  # what the models' Secrets hold (test value)


@pytest.fixture(scope="session")
def egctl() -> Path:
    """egctl of the pinned Envoy Gateway release (``scripts/cluster-tools.sh egctl``)."""
    return built_tools("egctl") / "egctl"


@pytest.fixture(scope="module")
def tls_secret(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str, str], dict[str, Any]]:
    """A kubernetes.io/tls Secret for a host name, as cert-manager would leave it (self-signed here)."""
    folder = tmp_path_factory.mktemp("tls")

    def make(name: str, namespace: str, hostname: str) -> dict[str, Any]:
        key, cert = folder / f"{name}.key", folder / f"{name}.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", f"/CN={hostname}", "-addext", f"subjectAltName=DNS:{hostname}"],
            capture_output=True, check=True,
        )  # fmt: skip
        return secret(name, namespace, {"tls.crt": cert.read_text(), "tls.key": key.read_text()}, "kubernetes.io/tls")

    return make


def secret(name: str, namespace: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "type": kind, "metadata": {"name": name, "namespace": namespace},
            "data": encoded}  # fmt: skip


def gateway_objects(documents: Rendered) -> list[dict[str, Any]]:
    """The render's objects Envoy Gateway reads, each listener admitting routes from every namespace (above)."""
    objects = [json.loads(json.dumps(d)) for _, d in documents if d["kind"] in GATEWAY_KINDS]
    for gateway in (o for o in objects if o["kind"] == "Gateway"):
        for listener in gateway["spec"]["listeners"]:
            listener["allowedRoutes"]["namespaces"] = {"from": "All"}
    services = [o for o in objects if o["kind"] == "Service" and "clusterIP" not in o["spec"]]
    for index, service in enumerate(services, start=10):
        service["spec"]["clusterIP"] = f"10.96.0.{index}"
    return objects


def carrier_routes(documents: Rendered) -> list[dict[str, Any]]:
    """Per AIGatewayRoute, the HTTPRoute Envoy AI Gateway's controller makes of it (its parent, hosts, the
    model-header match, its Backends): what Envoy Gateway's policies attach to."""
    routes = []
    for route in (d for _, d in documents if d["kind"] == "AIGatewayRoute"):
        spec = route["spec"]
        rules = [
            {
                "matches": rule["matches"],
                "backendRefs": [
                    {"group": "gateway.envoyproxy.io", "kind": "Backend", "name": ref["name"]}
                    for ref in rule["backendRefs"]
                ],
            }
            for rule in spec["rules"]
        ]
        routes.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": route["metadata"]["name"], "namespace": route["metadata"]["namespace"]},
                "spec": {"parentRefs": spec["parentRefs"], "hostnames": spec["hostnames"], "rules": rules},
            }
        )
    return routes


def translate(egctl: Path, objects: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """``egctl x translate`` to the objects with their status and the xDS, as JSON."""
    source = folder / "gateway-objects.yaml"
    source.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    result = subprocess.run(
        [str(egctl), "x", "translate", "--from", "gateway-api", "--to", "gateway-api,xds", "--type", "all",
         "--output", "json", "--file", str(source), "--namespace", "envoy-gateway-system"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    translated: dict[str, Any] = json.loads(result.stdout)
    return translated


def conditions(translated: dict[str, Any], key: str) -> dict[str, dict[str, str]]:
    """Per object of ``key`` (``httpRoutes``, ``securityPolicies``...), its status conditions by type."""
    found = {}
    for item in translated.get(key) or []:
        status = item.get("status") or {}
        per_parent = [*(status.get("parents") or []), *(status.get("ancestors") or [])]
        found[item["metadata"]["name"]] = {
            c["type"]: f"{c['status']}: {c.get('message', '')}" for p in per_parent for c in p["conditions"]
        }
    return found


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def http_filters(xds: Any) -> list[dict[str, Any]]:
    """The HTTPS listener's HTTP filters, in order (the chain with the most filters)."""
    chains = [n["httpFilters"] for n in walk(xds) if isinstance(n.get("httpFilters"), list)]
    return max(chains, key=len)


def per_route(xds: Any, prefix: str) -> list[dict[str, Any]]:
    """Every route's configuration of the filters named ``prefix``…"""
    return [
        config
        for node in walk(xds)
        if isinstance(node.get("typedPerFilterConfig"), dict)
        for name, config in node["typedPerFilterConfig"].items()
        if name.startswith(prefix)
    ]


def accepted(translated: dict[str, Any], key: str) -> None:
    for name, by_type in conditions(translated, key).items():
        assert by_type.get("Accepted", "").startswith("True"), f"{key} {name}: {by_type}"


def test_quotas_become_a_key_check_allow_lists_token_budgets_and_a_named_429(
    egctl: Path, rendered: Callable[[str], Rendered], tls_secret: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    documents = rendered("quotas")
    [gateway] = [d for _, d in documents if d["kind"] == "Gateway"]
    listener = gateway["spec"]["listeners"][0]
    namespace = gateway["metadata"]["namespace"]
    objects = [
        *gateway_objects(documents),
        *carrier_routes(documents),
        tls_secret(listener["tls"]["certificateRefs"][0]["name"], namespace, listener["hostname"]),
        secret("slm-api-keys", namespace, TEST_KEYS),
    ]
    translated = translate(egctl, objects, tmp_path)
    for key in ("httpRoutes", "securityPolicies", "backendTrafficPolicies"):
        accepted(translated, key)
    [xds] = translated["xds"].values()

    names = [f["name"] for f in http_filters(xds)]
    order = [
        next(i for i, n in enumerate(names) if n.startswith(prefix))
        for prefix in ("envoy.filters.http.custom_response", "envoy.filters.http.api_key_auth",
                       "envoy.filters.http.rbac", "envoy.filters.http.ratelimit")
    ]  # fmt: skip
    # custom_response first (it sees the rate limit's local reply); the key check before the allow-lists and budgets.
    assert order == sorted(order), names
    filters = {f["name"]: f.get("typedConfig", {}) for f in http_filters(xds)}
    [custom] = [c for n, c in filters.items() if n.startswith("envoy.filters.http.custom_response")]
    [matcher] = custom["customResponseMatcher"]["matcherList"]["matchers"]
    predicates = [p["singlePredicate"] for p in matcher["predicate"]["andMatcher"]["predicate"]]
    assert {p["input"]["name"]: p["valueMatch"]["exact"] for p in predicates} == {
        "http-response-status-code-match-input": "429",
        "http-response-local-reply-match-input": "true",
    }
    body = budget_exceeded_response(CLIENT_ID_HEADER)[0]["response"]["body"]["inline"]
    assert matcher["onMatch"]["action"]["typedConfig"]["bodyFormat"] == {"textFormat": body}
    limits = [c for n, c in filters.items() if n.startswith("envoy.filters.http.ratelimit")]
    assert limits and all(c["enableXRatelimitHeaders"] == "DRAFT_VERSION_03" for c in limits)

    [auth] = per_route(xds, "envoy.filters.http.api_key_auth")
    assert auth["forwarding"] == {"header": CLIENT_ID_HEADER, "hideCredentials": True}
    assert {c["client"] for c in auth["credentials"]} == set(TEST_KEYS)

    [rbac] = per_route(xds, "envoy.filters.http.rbac")
    matchers = rbac["rbac"]["matcher"]["matcherList"]["matchers"]
    allowed = {
        m["onMatch"]["action"]["name"]: {
            p["singlePredicate"]["input"]["typedConfig"]["headerName"]: p["singlePredicate"]["valueMatch"]["exact"]
            for p in m["predicate"]["andMatcher"]["predicate"]
        }
        for m in matchers
    }
    assert allowed == {
        "client-apps-chat": {CLIENT_ID_HEADER: "apps-chat", MODEL_HEADER: "qwen3-4b"},
        "client-evaluation": {CLIENT_ID_HEADER: "evaluation", MODEL_HEADER: "qwen3-4b"},
    }
    assert rbac["rbac"]["matcher"]["onNoMatch"]["action"]["typedConfig"]["action"] == "DENY"

    [budgets] = per_route(xds, "envoy.filters.http.ratelimit")
    spent = f"%DYNAMIC_METADATA({COST_NAMESPACE}:{TOTAL_TOKENS_KEY})%"
    by_client: dict[str, list[str]] = {}
    for limit in budgets["rateLimits"]:
        [client] = [
            h["stringMatch"]["exact"]
            for a in limit["actions"]
            for h in (a.get("headerValueMatch") or {}).get("headers", [])
            if h["name"] == CLIENT_ID_HEADER
        ]
        addend = limit["hitsAddend"]
        by_client.setdefault(client, []).append(
            "response" if limit.get("applyOnStreamDone") and addend == {"format": spent} else f"request {addend}"
        )
    # Each budget: checked on the request without spending (0), spent by the response's total tokens.
    # evaluation has two budgets (minute, day), apps-chat three (minute, day, month).
    assert sorted(by_client["evaluation"]) == sorted(["request {'number': '0'}", "response"] * 2)
    assert sorted(by_client["apps-chat"]) == sorted(["request {'number': '0'}", "response"] * 3)


def test_prod_routes_check_the_clients_key_then_send_the_models_own(
    egctl: Path, rendered: Callable[[str], Rendered], tls_secret: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """prod without quotas: the Gateway checks the client's key (and removes it), each vLLM route then sends the
    model's own key from its Secret (Envoy Gateway's credential injector, overwriting the header)."""
    documents = rendered("prod")
    [gateway] = [d for _, d in documents if d["kind"] == "Gateway"]
    namespace = gateway["metadata"]["namespace"]
    listener = gateway["spec"]["listeners"][0]
    filters = [d for _, d in documents if d["kind"] == "HTTPRouteFilter"]
    assert filters, "prod's vLLM models get their key by an HTTPRouteFilter"
    objects = [
        *gateway_objects(documents),
        tls_secret(listener["tls"]["certificateRefs"][0]["name"], namespace, listener["hostname"]),
        secret("slm-api-keys", namespace, TEST_KEYS),
        *(
            secret(
                f["spec"]["credentialInjection"]["credential"]["valueRef"]["name"],
                f["metadata"]["namespace"],
                {"credential": MODEL_CREDENTIAL},
            )
            for f in filters
        ),
    ]
    translated = translate(egctl, objects, tmp_path)
    for key in ("httpRoutes", "securityPolicies"):
        accepted(translated, key)
    [xds] = translated["xds"].values()
    names = [f["name"] for f in http_filters(xds)]
    key_check = next(i for i, n in enumerate(names) if n.startswith("envoy.filters.http.api_key_auth"))
    injectors = [i for i, n in enumerate(names) if n.startswith("envoy.filters.http.credential_injector")]
    assert len(injectors) == len(filters) and key_check < min(injectors), names
    auths = per_route(xds, "envoy.filters.http.api_key_auth")
    assert auths and all(a["forwarding"]["hideCredentials"] is True for a in auths)
    # Each injector sends the Secret of its HTTPRouteFilter (by SDS: the proxy gets the value, the dump shows the
    # name) as Authorization, replacing the client's header, and is switched on by its route only.
    injected = {
        f["name"].rsplit("/", 1)[-1]: f["typedConfig"]
        for f in http_filters(xds)
        if f["name"].startswith("envoy.filters.http.credential_injector")
    }
    assert set(injected) == {f["metadata"]["name"] for f in filters}
    for name, config in injected.items():
        generic = config["credential"]["typedConfig"]
        assert config["overwrite"] is True and generic["header"] == "Authorization", config
        assert generic["credential"]["name"].endswith(f"/{name}"), generic
    enabled = per_route(xds, "envoy.filters.http.credential_injector")
    assert len(enabled) == len(filters)
