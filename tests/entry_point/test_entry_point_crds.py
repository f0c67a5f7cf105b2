"""Bundled custom-resource schemas: what we render validates, a misspelled field fails."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pulumi
import pytest

from infra.components.entry_point import EntryPoint, EntryPointArgs, RouteTarget
from infra.config.entry_point import EntryPointConfig
from infra.plan.crds import BUNDLED, schema_file, validate_custom_resource
from infra.plan.engine import run_program
from infra.plan.render import Manifest, manifests
from tests.conftest import REFERENCE_STACKS

MODES = pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
PlanOf = Callable[[str, bool], Any]

CONFIGS: dict[str, dict[str, Any]] = {
    "issuer-public-keys-controller": {
        "tls": {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
        "exposure": "public",
        "apiKeys": "keys",
        "installController": True,
    },
    "secret-internal": {"tls": {"secretName": "llm-tls"}},
    "cluster-only": {"tls": {"secretName": "llm-tls"}, "exposure": "cluster", "apiKeys": "keys"},
}


def rendered(extra: dict[str, Any], preview: bool) -> list[Manifest]:
    entry = EntryPointConfig.model_validate({"enabled": True, "hostname": "llm.example.com", **extra})

    def program() -> None:
        EntryPoint(
            "entry",
            EntryPointArgs(
                config=entry,
                routes=[RouteTarget(model="phi4-mini", namespace="slm-phi4-mini", service="phi4-mini", port=8000)],
                api_keys=pulumi.Output.secret(json.dumps({"team-a": "k" * 32})) if entry.api_keys else None,
            ),
        )

    return manifests(run_program(program, "test", preview).resources)


def by_kind(items: list[Manifest], kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(m.document for m in items if m.kind == kind))


@MODES
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_rendered_custom_resource_validates(name: str, preview: bool) -> None:
    items = rendered(CONFIGS[name], preview)
    checked = set()
    for item in items:
        result = validate_custom_resource(item.document)
        if (item.api_version, item.kind) in BUNDLED:
            assert result == ("valid", ""), (item.path, result)
            checked.add(item.kind)
        else:
            assert result is None, item.path
    assert {"Gateway", "HTTPRoute", "EnvoyProxy"} <= checked


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_reference_stacks_custom_resources_validate(stack: str, plan_of: PlanOf) -> None:
    for item in manifests(plan_of(stack, True).run.resources):
        result = validate_custom_resource(item.document)
        assert result is None or result == ("valid", ""), (item.path, result)


def test_every_bundled_schema_ships_and_is_strict() -> None:
    folder = resources.files("infra.plan.crds")
    for api_version, kind in BUNDLED:
        schema = json.loads(folder.joinpath(schema_file(api_version, kind)).read_text(encoding="utf-8"))
        assert schema["properties"]["apiVersion"] == {"const": api_version}
        assert schema["properties"]["kind"] == {"const": kind}
        _assert_closed(schema, kind)


def _assert_closed(node: Any, where: str) -> None:
    if isinstance(node, dict):
        # Every object a schema defines (``if`` conditions are not definitions) refuses unknown keys.
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, where
        for key, value in node.items():
            _assert_closed(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _assert_closed(value, f"{where}[{index}]")


def test_kinds_without_a_bundled_schema_are_not_checked() -> None:
    assert validate_custom_resource({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}) is None
    assert validate_custom_resource({"apiVersion": "example.com/v1", "kind": "Widget"}) is None
    assert validate_custom_resource({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy"}) is None


SECRET_PROVIDER_CLASS: dict[str, Any] = {
    "apiVersion": "secrets-store.csi.x-k8s.io/v1",
    "kind": "SecretProviderClass",
    "metadata": {"name": "phi4-mini-secrets", "namespace": "slm-phi4-mini", "labels": {"a": "b"}},
    "spec": {
        "provider": "azure",
        "parameters": {
            "usePodIdentity": "false",
            "clientID": "00000000-0000-0000-0000-000000000000",
            "keyvaultName": "kv-slm",
            "tenantId": "00000000-0000-0000-0000-000000000000",
            "objects": "array:\n  - |\n    objectName: slm-phi4-mini-hfToken\n    objectType: secret\n",
        },
    },
}
CILIUM_POLICY: dict[str, Any] = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "allow-model-download-fqdn", "namespace": "slm-phi4-mini"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app.kubernetes.io/name": "vllm"}},
        "egress": [
            {
                "toEndpoints": [
                    {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}
                ],
                "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}],
            },
            {
                "toFQDNs": [{"matchName": "huggingface.co"}, {"matchPattern": "*.hf.co"}],
                "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
            },
        ],
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"app.kubernetes.io/name": "envoy"}}],
                "toPorts": [{"ports": [{"port": "8000", "protocol": "TCP"}]}],
            }
        ],
    },
}


@pytest.mark.parametrize("document", [SECRET_PROVIDER_CLASS, CILIUM_POLICY], ids=["spc", "cilium"])
def test_secrets_and_network_kinds_validate(document: dict[str, Any]) -> None:
    assert validate_custom_resource(document) == ("valid", "")


def _entry_point_documents() -> dict[str, dict[str, Any]]:
    items = rendered(CONFIGS["issuer-public-keys-controller"], True)
    kinds = ("Gateway", "GatewayClass", "HTTPRoute", "SecurityPolicy", "EnvoyProxy", "Certificate")
    return {kind: by_kind(items, kind) for kind in kinds}


def _rename(document: dict[str, Any], path: tuple[str | int, ...], old: str, new: str) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    node: Any = changed
    for part in path:
        node = node[part]
    node[new] = node.pop(old)
    return changed


MISSPELLINGS = [
    ("Gateway", ("spec", "listeners", 0, "tls"), "certificateRefs", "certficateRefs", "spec.listeners.0.tls"),
    ("Gateway", ("spec", "listeners", 0), "allowedRoutes", "allowedRoute", "spec.listeners.0"),
    ("GatewayClass", ("spec",), "controllerName", "controller", "spec"),
    ("HTTPRoute", ("spec", "rules", 0, "filters", 0, "urlRewrite", "path"), "replacePrefixMatch", "replacePrefix", ""),
    ("HTTPRoute", ("spec", "rules", 0), "backendRefs", "backendRef", "spec.rules.0"),
    ("SecurityPolicy", ("spec", "apiKeyAuth"), "extractFrom", "extractfrom", "spec.apiKeyAuth"),
    ("SecurityPolicy", ("spec", "apiKeyAuth"), "forwardClientIDHeader", "forwardClientIdHeader", "spec.apiKeyAuth"),
    (
        "EnvoyProxy",
        ("spec", "provider", "kubernetes", "envoyDeployment", "container", "securityContext"),
        "readOnlyRootFilesystem",
        "readOnlyRootFileSystem",
        "spec.provider.kubernetes.envoyDeployment.container.securityContext",
    ),
    ("EnvoyProxy", ("spec", "provider", "kubernetes"), "envoyService", "envoyservice", "spec.provider.kubernetes"),
    ("Certificate", ("spec",), "dnsNames", "dnsName", "spec"),
    ("Certificate", ("spec", "issuerRef"), "kind", "kinds", "spec.issuerRef"),
]


@pytest.mark.parametrize(
    ("kind", "path", "old", "new", "where"), MISSPELLINGS, ids=[f"{m[0]}-{m[3]}" for m in MISSPELLINGS]
)
def test_a_misspelled_field_fails(kind: str, path: tuple[str | int, ...], old: str, new: str, where: str) -> None:
    document = _rename(_entry_point_documents()[kind], path, old, new)
    status, message = validate_custom_resource(document) or ("", "")
    assert status == "invalid"
    assert new in message or old in message, message
    if where:
        assert message.startswith(f"{where}: "), message


@pytest.mark.parametrize(
    ("document", "path", "old", "new"),
    [
        (SECRET_PROVIDER_CLASS, ("spec",), "parameters", "parameter"),
        (CILIUM_POLICY, ("spec",), "endpointSelector", "endpointselector"),
        (CILIUM_POLICY, ("spec", "egress", 1, "toFQDNs", 0), "matchName", "matchname"),
        (CILIUM_POLICY, ("spec", "egress", 0, "toPorts", 0, "rules", "dns", 0), "matchPattern", "pattern"),
        (CILIUM_POLICY, ("spec", "egress", 1, "toPorts", 0, "ports", 0), "protocol", "proto"),
    ],
    ids=["spc-parameters", "cilium-endpoint-selector", "cilium-fqdn", "cilium-dns", "cilium-port"],
)
def test_a_misspelled_field_fails_in_secrets_and_network_kinds(
    document: dict[str, Any], path: tuple[str | int, ...], old: str, new: str
) -> None:
    status, _ = validate_custom_resource(_rename(document, path, old, new)) or ("", "")
    assert status == "invalid"


@pytest.mark.parametrize(
    ("kind", "change", "fragment"),
    [
        ("Gateway", lambda d: d["spec"]["listeners"][0].update(port=70000), "spec.listeners.0.port"),
        ("Gateway", lambda d: d["spec"]["listeners"][0]["tls"].update(mode="Reencrypt"), "spec.listeners.0.tls.mode"),
        ("HTTPRoute", lambda d: d["spec"]["rules"][0].update(timeouts={"request": "5 min"}), "timeouts.request"),
        ("HTTPRoute", lambda d: d["spec"]["rules"][0]["filters"][0].pop("urlRewrite"), "urlRewrite"),
        ("SecurityPolicy", lambda d: d["spec"]["apiKeyAuth"].update(extractFrom=[{}]), "spec.apiKeyAuth.extractFrom.0"),
        (
            "SecurityPolicy",
            lambda d: d["spec"]["apiKeyAuth"].update(extractFrom=[{"headers": ["a"], "params": ["b"]}]),
            "spec.apiKeyAuth.extractFrom.0",
        ),
        (
            "EnvoyProxy",
            lambda d: d["spec"]["provider"]["kubernetes"]["envoyService"].update(type="External"),
            "envoyService.type",
        ),
        ("Certificate", lambda d: d["spec"].pop("secretName"), "'secretName' is a required property"),
    ],
    ids=["port-range", "tls-mode", "duration", "rewrite-missing", "extract-empty", "extract-two", "svc-type", "cert"],
)
def test_wrong_values_fail(kind: str, change: Callable[[dict[str, Any]], Any], fragment: str) -> None:
    document = _entry_point_documents()[kind]
    change(document)
    status, message = validate_custom_resource(document) or ("", "")
    assert status == "invalid"
    assert fragment in message, message
