"""SLM-COST-003 (stack): every API-key client allowed at the gateway has a token budget.

With ``entryPoint.quotas`` the entry point's SecurityPolicy allows each client by name (``x-slm-client``), and a
BackendTrafficPolicy spends each client's budgets by the tokens of its responses (a global rate-limit rule whose
client selector is that header). A client allowed with no such rule can spend GPU time without limit: one runaway
batch job starves every other client. Refused where the level asks for budgets (prod: mandatory).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib.finding import Finding
from ...lib.k8s import get, items
from ...lib.rule import SLM, Rule
from ..model_allow_list import CLIENT_HEADER, SECURITY_POLICY

TRAFFIC_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:BackendTrafficPolicy"


def _allowed(props: Any) -> set[str]:
    clients: set[str] = set()
    for rule in items(get(props, "spec", "authorization", "rules")):
        if get(rule, "action") != "Allow":
            continue
        for header in items(get(rule, "principal", "headers")):
            if str(get(header, "name")).lower() == CLIENT_HEADER:
                clients.update(str(v) for v in items(get(header, "values")))
    return clients


def _budgeted(props: Any) -> set[str]:
    clients: set[str] = set()
    for rule in items(get(props, "spec", "rateLimit", "global", "rules")):
        if get(rule, "cost", "response", "from") != "Metadata":
            continue  # a request count is not a token budget
        for selector in items(get(rule, "clientSelectors")):
            for header in items(get(selector, "headers")):
                if str(get(header, "name")).lower() == CLIENT_HEADER and get(header, "value") is not None:
                    clients.add(str(get(header, "value")))
    return clients


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    policies = [r for r in args.resources if r.resource_type == SECURITY_POLICY and _allowed(r.props)]
    if not policies:
        args.not_applicable("no SecurityPolicy allows clients by name")
    budgeted: set[str] = set()
    for resource in args.resources:
        if resource.resource_type == TRAFFIC_POLICY:
            budgeted |= _budgeted(resource.props)
    for policy in policies:
        for client in sorted(_allowed(policy.props) - budgeted):
            yield (
                policy.urn,
                Finding(f"client {client} is allowed at the gateway but has no token budget", subject=client),
            )


RULE = Rule(
    id="SLM-COST-003",
    name="client-token-budget",
    title="Every API-key client must have a token budget",
    severity="medium",
    rationale="GPU capacity is shared: a client without a budget can take all of it (a loop, a leaked key), and "
    "its spending has no ceiling.",
    remediation="Give the client tokensPerMinute and tokensPerDay or tokensPerMonth under "
    "entryPoint.quotas.clients.<client>.",
    controls={SLM: ("Spending has an owner and a ceiling",)},
    kind="stack",
    resource_types=frozenset({SECURITY_POLICY, TRAFFIC_POLICY}),
    check=check,
)
