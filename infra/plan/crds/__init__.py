"""Strict JSON schemas of the custom resources slm-deploy renders, and their validation.

kubernetes-validate knows only the built-in kinds; the custom resources this project creates
(Gateway API, Envoy Gateway, cert-manager, Secrets Store CSI, Cilium, Prometheus Operator, KEDA, the
Vertical Pod Autoscaler, the Gateway API Inference Extension's InferencePool) are checked here against
schemas written from each API's documented fields. Every object level a schema defines refuses
unknown keys, so a misspelled field fails as it does for built-in kinds in strict mode.

One file per kind, named ``<group>_<version>_<Kind>.json`` (``/`` of the apiVersion as ``_``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

#: ``(apiVersion, kind)`` of every bundled schema.
BUNDLED: frozenset[tuple[str, str]] = frozenset(
    {
        ("gateway.networking.k8s.io/v1", "Gateway"),
        ("gateway.networking.k8s.io/v1", "GatewayClass"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.envoyproxy.io/v1alpha1", "SecurityPolicy"),
        ("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy"),
        ("gateway.envoyproxy.io/v1alpha1", "HTTPRouteFilter"),
        ("cert-manager.io/v1", "Certificate"),
        ("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass"),
        ("cilium.io/v2", "CiliumNetworkPolicy"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("http.keda.sh/v1alpha1", "HTTPScaledObject"),
        ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
        ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
        ("inference.networking.k8s.io/v1", "InferencePool"),
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.azure.com/v1beta1", "AKSNodeClass"),
        ("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy"),
        ("gateway.envoyproxy.io/v1alpha1", "Backend"),
        ("aigateway.envoyproxy.io/v1beta1", "AIGatewayRoute"),
        ("aigateway.envoyproxy.io/v1beta1", "AIServiceBackend"),
        ("aigateway.envoyproxy.io/v1beta1", "BackendSecurityPolicy"),
    }
)


def schema_file(api_version: str, kind: str) -> str:
    """The bundled file name of a kind's schema."""
    return f"{api_version.replace('/', '_')}_{kind}.json"


@cache
def _validator(api_version: str, kind: str) -> Any:
    from jsonschema import Draft202012Validator

    text = resources.files(__package__).joinpath(schema_file(api_version, kind)).read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate_custom_resource(document: dict[str, Any]) -> tuple[str, str] | None:
    """Check a rendered custom resource against its bundled schema.

    Returns ``None`` when no schema is bundled for the document's apiVersion and kind, else
    ``("valid", "")`` or ``("invalid", "<path>: <message>")`` (the path as ``spec.listeners.0.tls``,
    as :mod:`infra.plan.schema` reports built-in kinds).
    """
    from jsonschema.exceptions import best_match

    key = (str(document.get("apiVersion", "")), str(document.get("kind", "")))
    if key not in BUNDLED:
        return None
    error = best_match(_validator(*key).iter_errors(document))
    if error is None:
        return ("valid", "")
    where = ".".join(str(part) for part in error.absolute_path)
    return ("invalid", f"{where}: {error.message}" if where else error.message)
