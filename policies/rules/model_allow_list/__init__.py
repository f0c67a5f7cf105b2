"""SLM-NET-008: each API-key client's allow-list names its models (no client may call every model).

With ``entryPoint.quotas`` the entry point's SecurityPolicy carries one Allow rule per client: the client id the
gateway forwards after checking the key (``x-slm-client``) and the models it may call (``x-ai-eg-model``, filled by
Envoy AI Gateway from the request). A rule with the client header but no model header lets that client call every
model behind the gateway, including one added later (``models: ["*"]`` in the stack). Refused where the level
asks for explicit lists (prod: mandatory; dev and staging: advisory).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.finding import Finding
from ...lib.k8s import get, items
from ...lib.rule import SLM, Rule

SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"
CLIENT_HEADER = "x-slm-client"
MODEL_HEADER = "x-ai-eg-model"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str | Finding]:
    for rule in items(get(args.props, "spec", "authorization", "rules")):
        if get(rule, "action") != "Allow":
            continue
        headers = {
            str(get(h, "name")).lower(): items(get(h, "values")) for h in items(get(rule, "principal", "headers"))
        }
        if CLIENT_HEADER in headers and MODEL_HEADER not in headers:
            for client in headers[CLIENT_HEADER]:
                yield Finding(
                    f"authorization rule {get(rule, 'name') or '?'} lets client {client} call every model: list its "
                    "models",
                    subject=str(client),
                )


RULE = Rule(
    id="SLM-NET-008",
    name="model-allow-list",
    title="Each API-key client must have an explicit list of the models it may call",
    severity="medium",
    rationale="A client allowed every model reaches models added later without review, and its key, if leaked, "
    "opens every model the gateway serves.",
    remediation='List the client\'s models in entryPoint.quotas.clients.<client>.models instead of ["*"].',
    controls={SLM: ("Traffic reaches only the model it is addressed to",)},
    resource_types=frozenset({SECURITY_POLICY}),
    check=check,
)
