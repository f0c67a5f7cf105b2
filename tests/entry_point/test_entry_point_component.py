"""The EntryPoint component under the Pulumi mock engine, in preview and in update mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.components.entry_point import (
    AZURE_INTERNAL_LB,
    ENVOY_GATEWAY_CHART,
    PUBLIC_EXPOSURE,
    EntryPoint,
    EntryPointArgs,
    RouteTarget,
)
from infra.config.entry_point import EntryPointConfig
from infra.config.secrets import OFFLINE_SECRET_PLACEHOLDER
from infra.plan.engine import PlanRun, run_program
from infra.plan.model import RecordedResource, Secret
from tests.helpers import of_kind, one

MODES = pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
CANARY = "canary-gateway-key-7d41e09a2c"
HOST = "llm.example.com"
ROUTES = (
    RouteTarget(model="phi4-mini", namespace="slm-phi4-mini", service="phi4-mini", port=8000),
    RouteTarget(model="qwen3", namespace="slm-qwen3", service="qwen3", port=8000),
)


def config(**extra: Any) -> EntryPointConfig:
    data = {"enabled": True, "hostname": HOST, "tls": {"issuerRef": {"name": "letsencrypt"}}, **extra}
    return EntryPointConfig.model_validate(data)


def plan(
    entry: EntryPointConfig, preview: bool, api_keys: str | None = None, routes: tuple[RouteTarget, ...] = ROUTES
) -> tuple[PlanRun, dict[str, EntryPoint]]:
    built: dict[str, EntryPoint] = {}

    def program() -> None:
        provider = k8s.Provider("kubernetes")
        built["entry"] = EntryPoint(
            "entry",
            EntryPointArgs(
                config=entry,
                routes=routes,
                api_keys=pulumi.Output.secret(api_keys) if api_keys is not None else None,
                labels={"cost-center": "ml"},
            ),
            opts=pulumi.ResourceOptions(provider=provider),
        )

    return run_program(program, "test", preview), built


def secured(preview: bool, **extra: Any) -> tuple[PlanRun, dict[str, EntryPoint]]:
    return plan(config(apiKeys="keys", **extra), preview, api_keys=json.dumps({"team-a": CANARY}))


def spec(resource: RecordedResource) -> dict[str, Any]:
    value: dict[str, Any] = resource.inputs["spec"]
    return value


@MODES
def test_children_are_named_for_the_component_and_use_its_provider(preview: bool) -> None:
    run, _ = secured(preview, installController=True)
    component = one_component(run)
    provider = next(r for r in run.resources if r.type == "pulumi:providers:kubernetes")
    children = [r for r in run.resources if r.parent == component.urn]
    assert sorted(r.kind for r in children) == sorted(
        [
            "Namespace",
            "Namespace",
            "Release",
            "GatewayClass",
            "EnvoyProxy",
            "Certificate",
            "Gateway",
            "Secret",
            "SecurityPolicy",
            "HTTPRoute",
            "HTTPRoute",
        ]
    )
    for child in children:
        assert child.name.startswith("entry-")
        assert child.provider == provider.urn


def one_component(run: PlanRun) -> RecordedResource:
    components = [r for r in run.resources if r.type == "slm-deploy:network:EntryPoint"]
    assert len(components) == 1
    return components[0]


@MODES
def test_https_listener_terminates_tls_and_admits_only_model_namespaces(preview: bool) -> None:
    run, _ = secured(preview)
    gateway = one(run.resources, "Gateway", "entry-gateway")
    assert gateway.inputs["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway.inputs["metadata"]["namespace"] == "slm-gateway"
    assert spec(gateway)["gatewayClassName"] == "eg"
    assert spec(gateway)["infrastructure"] == {
        "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": "slm-deploy-proxy"}
    }
    (listener,) = spec(gateway)["listeners"]
    assert listener["protocol"] == "HTTPS"
    assert listener["port"] == 443
    assert listener["hostname"] == HOST
    assert listener["tls"] == {
        "mode": "Terminate",
        "certificateRefs": [{"group": "", "kind": "Secret", "name": "slm-entry-point-tls"}],
    }
    assert listener["allowedRoutes"] == {
        "kinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
        "namespaces": {
            "from": "Selector",
            "selector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["slm-phi4-mini", "slm-qwen3"]}
                ]
            },
        },
    }
    certificate = one(run.resources, "Certificate", "entry-certificate")
    assert spec(certificate)["secretName"] == "slm-entry-point-tls"
    assert spec(certificate)["dnsNames"] == [HOST]
    assert spec(certificate)["issuerRef"] == {
        "group": "cert-manager.io",
        "kind": "ClusterIssuer",
        "name": "letsencrypt",
    }


@MODES
def test_an_existing_tls_secret_replaces_the_certificate(preview: bool) -> None:
    run, _ = plan(config(tls={"secretName": "llm-tls"}), preview)
    assert of_kind(run.resources, "Certificate") == []
    (listener,) = spec(one(run.resources, "Gateway", "entry-gateway"))["listeners"]
    assert listener["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "llm-tls"}]


@MODES
def test_each_model_gets_a_route_in_its_namespace_with_the_prefix_rewritten(preview: bool) -> None:
    run, built = secured(preview)
    for target in ROUTES:
        route = one(run.resources, "HTTPRoute", f"entry-route-{target.model}")
        assert route.inputs["metadata"]["namespace"] == target.namespace
        assert spec(route)["parentRefs"] == [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "namespace": "slm-gateway",
                "name": "slm-deploy",
                "sectionName": "https",
            }
        ]
        assert spec(route)["hostnames"] == [HOST]
        (rule,) = spec(route)["rules"]
        assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": f"/models/{target.model}/v1"}}]
        assert rule["filters"] == [
            {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1"}}}
        ]
        assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": target.service, "port": 8000}]
        assert rule["timeouts"] == {"request": "300s"}
        # No route exists before authentication does.
        assert any(d.endswith("SecurityPolicy::entry-api-key-auth") for d in route.dependencies)
    assert built["entry"].base_urls == {
        "phi4-mini": f"https://{HOST}/models/phi4-mini/v1",
        "qwen3": f"https://{HOST}/models/qwen3/v1",
    }


@MODES
def test_api_keys_are_checked_on_the_gateway_from_a_secret_reference(preview: bool) -> None:
    run, _ = secured(preview)
    secret = one(run.resources, "Secret", "entry-api-keys")
    assert secret.inputs["metadata"]["namespace"] == "slm-gateway"
    assert secret.inputs["type"] == "Opaque"
    assert isinstance(secret.inputs["stringData"], Secret)
    assert secret.inputs["stringData"].value == {"team-a": CANARY}
    policy = one(run.resources, "SecurityPolicy", "entry-api-key-auth")
    assert policy.inputs["apiVersion"] == "gateway.envoyproxy.io/v1alpha1"
    assert policy.inputs["metadata"]["namespace"] == "slm-gateway"
    assert spec(policy)["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "slm-deploy"}
    ]
    auth = spec(policy)["apiKeyAuth"]
    assert auth["credentialRefs"] == [{"group": "", "kind": "Secret", "name": secret.inputs["metadata"]["name"]}]
    assert auth["extractFrom"] == [{"headers": ["authorization"]}]
    assert auth["sanitize"] is True
    assert auth["forwardClientIDHeader"] == "x-slm-client"


@MODES
def test_the_key_text_never_appears_in_recorded_inputs(preview: bool) -> None:
    run, _ = secured(preview)
    assert CANARY not in repr([r.inputs for r in run.resources])
    assert CANARY not in repr(run.resources)


@MODES
def test_offline_placeholder_secret_stands_in_for_the_keys(preview: bool) -> None:
    run, _ = plan(config(apiKeys="keys"), preview, api_keys=OFFLINE_SECRET_PLACEHOLDER)
    secret = one(run.resources, "Secret", "entry-api-keys")
    assert isinstance(secret.inputs["stringData"], Secret)
    assert list(secret.inputs["stringData"].value) == ["offline-placeholder"]


@MODES
def test_without_api_keys_there_is_no_authentication(preview: bool) -> None:
    run, _ = plan(config(), preview)
    assert of_kind(run.resources, "SecurityPolicy") == []
    assert of_kind(run.resources, "Secret") == []


@MODES
@pytest.mark.parametrize(
    ("exposure", "service"),
    [
        ("cluster", {"type": "ClusterIP"}),
        ("internal", {"type": "LoadBalancer", "annotations": {AZURE_INTERNAL_LB: "true"}}),
        (
            "public",
            {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "annotations": {PUBLIC_EXPOSURE: "allowed"}},
        ),
    ],
)
def test_exposure_sets_the_proxy_service(preview: bool, exposure: str, service: dict[str, Any]) -> None:
    run, _ = plan(config(exposure=exposure), preview)
    proxy = one(run.resources, "EnvoyProxy", "entry-proxy-config")
    assert spec(proxy)["provider"]["kubernetes"]["envoyService"] == service
    annotations = one(run.resources, "Gateway", "entry-gateway").inputs["metadata"].get("annotations")
    assert annotations == ({PUBLIC_EXPOSURE: "allowed"} if exposure == "public" else None)


@MODES
def test_proxy_pods_are_hardened_for_restricted_namespaces(preview: bool) -> None:
    run, _ = plan(config(replicas=3), preview)
    deployment = spec(one(run.resources, "EnvoyProxy", "entry-proxy-config"))["provider"]["kubernetes"][
        "envoyDeployment"
    ]
    assert deployment["replicas"] == 3
    pod = deployment["pod"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = deployment["container"]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["privileged"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(deployment["container"]["resources"]) == {"requests", "limits"}
    namespace = one(run.resources, "Namespace", "entry-namespace")
    for mode in ("enforce", "audit", "warn"):
        assert namespace.inputs["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted"


@MODES
def test_every_object_carries_the_recommended_labels(preview: bool) -> None:
    run, _ = secured(preview, installController=True)
    for resource in run.resources:
        if resource.custom and resource.type.startswith("kubernetes:") and "helm" not in resource.type:
            labels = resource.inputs["metadata"]["labels"]
            for key in ("name", "instance", "version", "component", "part-of", "managed-by"):
                assert f"app.kubernetes.io/{key}" in labels, (resource.name, key)
            assert labels["app.kubernetes.io/component"] == "entry-point"
            assert labels["cost-center"] == "ml"


@MODES
def test_the_controller_is_a_pinned_release_in_gateway_namespace_mode(preview: bool) -> None:
    run, _ = plan(config(installController=True), preview)
    release = one(run.resources, "Release", "entry-controller")
    assert release.inputs["chart"] == ENVOY_GATEWAY_CHART
    assert release.inputs["version"] == "v1.9.3"
    assert release.inputs["namespace"] == "envoy-gateway-system"
    deploy = release.inputs["values"]["config"]["envoyGateway"]["provider"]["kubernetes"]["deploy"]
    assert deploy == {"type": "GatewayNamespace"}
    gateway_class = one(run.resources, "GatewayClass", "entry-gateway-class")
    assert spec(gateway_class)["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    # Custom resources wait for the chart that installs their CRDs.
    for kind in ("EnvoyProxy", "Gateway", "Certificate"):
        resource = of_kind(run.resources, kind)[0]
        assert any(d.endswith("Release::entry-controller") for d in resource.dependencies), kind


@MODES
def test_without_install_there_is_no_release_or_gateway_class(preview: bool) -> None:
    run, _ = plan(config(), preview)
    assert of_kind(run.resources, "Release") == []
    assert of_kind(run.resources, "GatewayClass") == []


@pytest.mark.parametrize(
    ("extra", "namespace"),
    [({}, "slm-gateway"), ({"proxyPlacement": "controller-namespace"}, "envoy-gateway-system")],
)
def test_gateway_peer_names_the_proxy_pods(extra: dict[str, Any], namespace: str) -> None:
    _, built = plan(config(**extra), True)
    peer_namespace, labels = built["entry"].gateway_peer
    assert peer_namespace == namespace
    assert labels == {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": "slm-deploy",
        "gateway.envoyproxy.io/owning-gateway-namespace": "slm-gateway",
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EntryPointConfig(), "needs an enabled entryPoint config"),
        (lambda: config(apiKeys="keys"), "names secret 'keys', but no value was passed"),
    ],
)
def test_misuse_is_refused(make: Callable[[], EntryPointConfig], message: str) -> None:
    entry = make()

    def program() -> None:
        EntryPoint("entry", EntryPointArgs(config=entry, routes=ROUTES))

    with pytest.raises(ValueError, match=message):
        run_program(program, "test", True)
