"""SLM-NET-004: an endpoint picker serves the gateway over TLS (its ``--secure-serving`` stays on).

With an InferencePool, the gateway's proxy streams each request's headers and body (the prompt) to the pool's
endpoint picker over gRPC (ext-proc) and takes the pod to use from the answer. llm-d's picker serves that gRPC
over TLS unless ``--secure-serving=false``; turned off, prompts cross the cluster network in clear and anything
that can reach the port can answer in the picker's place. A picker is recognised by its ``--pool-name`` flag.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, items, pod_template
from ...lib.rule import NSA, SLM, Rule

FLAG = "--secure-serving"
_FALSE = {"false", "0", "f", "False", "FALSE"}


def _flag_values(arguments: list[str], flag: str) -> Iterator[str]:
    """Every value given to the boolean ``flag``: Go's flag package takes a boolean's value only as ``--flag=value``
    (a bare ``--flag`` is true; a word after it is a positional argument). One or two dashes both work."""
    names = {flag, flag[1:]}
    for argument in arguments:
        name, equals, value = argument.partition("=")
        if name in names:
            yield value if equals else "true"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        arguments = [str(a) for a in [*items(get(c.body, "command")), *items(get(c.body, "args"))]]
        if not any(a.lstrip("-").partition("=")[0] == "pool-name" for a in arguments):
            continue
        for value in _flag_values(arguments, FLAG):
            if value in _FALSE:
                yield f"{c.label}: endpoint picker runs with {FLAG}={value}: the gateway's requests reach it in clear"


RULE = Rule(
    id="SLM-NET-004",
    name="endpoint-picker-secure-serving",
    title="Endpoint pickers must serve the gateway over TLS",
    severity="high",
    rationale="The gateway sends every request of an InferencePool, prompt included, to the endpoint picker and "
    "routes by its answer: in clear, the prompts are readable on the network and a rogue answer picks the pod.",
    remediation="Remove --secure-serving=false from the endpoint picker's arguments (TLS is its default).",
    controls={
        NSA: ("Encrypt traffic inside the cluster",),
        SLM: ("Traffic reaches only the model it is addressed to",),
    },
    resource_types=WORKLOAD_TYPES,
    check=check,
)
