"""SLM-NET-002: no public LoadBalancer Service unless explicitly allowed.

Also checks the Service an Envoy Gateway ``EnvoyProxy`` asks its controller to create
(``spec.provider.kubernetes.envoyService``): Pulumi never sees that Service, only the request for it.
Where ``honorExposureAnnotation`` is false (prod), the annotation is not enough: only a waiver, with an
owner and an expiry, lets a public load balancer through.

The entry point's proxy serves the API and, with ``chatUi.enabled``, the chat page on the same public IP: each
is its own finding, with subject ``api`` or ``chat-page``, so a waiver for the API's public exposure does not put
the chat page (a login page for people, with its own risks) on the internet; that needs its own waiver.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib import stack_config
from ...lib.finding import Finding
from ...lib.k8s import SERVICE, annotations_of, get, is_map
from ...lib.rule import AKS, NSA, Rule

INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
EXPOSURE = "slm-deploy.io/public-exposure"


ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
#: Subjects of the entry point's findings: what the public IP would serve.
API, CHAT_PAGE = "api", "chat-page"


def public_subjects() -> list[str]:
    """What the entry point's proxy serves: the API, and the chat page when the stack enables it."""
    chat = stack_config.value("chatUi", default={})
    return [API, CHAT_PAGE] if is_map(chat) and chat.get("enabled") is True else [API]


def _service_shape(args: ResourceValidationArgs) -> tuple[Any, dict[str, str], str]:
    """(type, annotations, what) of the Service this resource is or asks for."""
    if args.resource_type == ENVOY_PROXY:
        service = get(args.props, "spec", "provider", "kubernetes", "envoyService", default={})
        annotations = get(service, "annotations", default={})
        kind = get(service, "type", default="LoadBalancer")  # Envoy Gateway's default proxy Service type
        return kind, {str(k): str(annotations[k]) for k in annotations} if annotations else {}, "EnvoyProxy service"
    return get(args.props, "spec", "type"), annotations_of(args.props), "Service"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    findings = list(_findings(args, config))
    if args.resource_type != ENVOY_PROXY:
        yield from findings
        return
    for message in findings:
        for subject in public_subjects():
            served = "the API" if subject == API else "the chat page (chatUi), which needs its own waiver"
            yield Finding(f"{message}; it would serve {served}", subject=subject)


def _findings(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    kind, annotations, what = _service_shape(args)
    if kind != "LoadBalancer":
        return
    if annotations.get(INTERNAL, "").lower() == "true":
        return
    if config.get("allowPublicLoadBalancer") is True:
        return
    honor = config.get("honorExposureAnnotation", True) is not False
    if annotations.get(EXPOSURE) == "allowed" and honor:
        return
    if annotations.get(EXPOSURE) == "allowed":
        yield (
            f"{what} of type LoadBalancer gets a public IP; here the {EXPOSURE} annotation is not enough: "
            "waive this policy for the resource (with reason, owner and expiry) if it must be public"
        )
        return
    yield (
        f"{what} of type LoadBalancer gets a public IP; make it internal "
        f'({INTERNAL}: "true") or allow it explicitly ({EXPOSURE}: "allowed")'
    )


RULE = Rule(
    id="SLM-NET-002",
    name="no-public-load-balancer",
    title="Services must not get a public load balancer unless explicitly allowed",
    severity="high",
    rationale="A public load balancer puts an unauthenticated inference API on the internet.",
    remediation=(
        "Use ClusterIP behind an ingress/gateway, an internal load balancer, or annotate the Service as allowed."
    ),
    controls={NSA: ("Network separation and hardening",), AKS: ("NS-2: secure cloud services with network controls",)},
    resource_types=frozenset({SERVICE, ENVOY_PROXY}),
    config={
        "allowPublicLoadBalancer": {
            "type": "boolean",
            "default": False,
            "description": "Allow public LoadBalancer Services in this environment.",
        },
        "honorExposureAnnotation": {
            "type": "boolean",
            "default": True,
            "description": "Let the slm-deploy.io/public-exposure annotation allow a public load balancer; "
            "false means only a waiver can.",
        },
    },
    check=check,
    subject="what the public IP serves (api, chat-page) on the entry point's proxy",
)
