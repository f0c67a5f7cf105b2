"""SLM-SRV-001: model servers run without flags that execute remote code, expose local files or put a
secret on the command line.

- ``--trust-remote-code`` (vLLM, transformers-based servers) runs Python shipped in the model repository;
- ``--api-key``, ``--hf-token``, ``--token`` with a value: the secret is in the pod spec, in ``ps`` on the
  node and in every log that prints the command (pass it by file or ``secretKeyRef`` instead);
- ``--allowed-local-media-path`` lets API clients read files of the container;
- ``VLLM_ALLOW_RUNTIME_LORA_UPDATING`` lets API clients load adapters (code and weights) at run time;
- ``OLLAMA_ORIGINS`` with ``*`` accepts browser requests from any web page;
- ``$(VAR)`` in a command or argument: the kubelet pastes that variable's value in (a secret's too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, is_map, items, pod_template
from ...lib.rule import NSA, SLM, Rule

#: Flags (with or without ``=value``) and what each one does.
FLAGS = {
    "--trust-remote-code": "runs Python code from the model repository inside the server",
    "--allowed-local-media-path": "lets API clients read files of the container",
}
#: Flags whose value is a secret: given on the command line, it leaks into the pod spec and process list.
SECRET_FLAGS = ("--api-key", "--hf-token", "--token")
#: Environment variables (value test, what it does).
ENVIRONMENT: dict[str, tuple[Callable[[str], bool], str]] = {
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING": (
        lambda value: value.lower() in ("1", "true"),
        "lets API clients load LoRA adapters at run time",
    ),
    "OLLAMA_ORIGINS": (lambda value: "*" in value, "accepts browser requests from any origin"),
}
_REFERENCE = re.compile(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _flag(token: str) -> str:
    return token.split("=", 1)[0]


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for container in containers(pod.spec):
        tokens = [str(t) for t in (*items(get(container.body, "command")), *items(get(container.body, "args")))]
        for index, token in enumerate(tokens):
            flag = _flag(token)
            if flag in FLAGS:
                yield f"{container.label} passes {flag}: it {FLAGS[flag]}"
            if flag in SECRET_FLAGS and ("=" in token or index + 1 < len(tokens)):
                yield f"{container.label} passes a secret on the command line ({flag}): mount it as a file instead"
            for name in _REFERENCE.findall(token):
                yield f"{container.label} expands $({name}) in its command line: the variable's value is pasted in"
        for variable in items(get(container.body, "env")):
            if not is_map(variable):
                continue
            name, value = str(variable.get("name", "")), variable.get("value")
            if name in ENVIRONMENT and isinstance(value, str) and ENVIRONMENT[name][0](value):
                yield f"{container.label} sets {name}={value}: it {ENVIRONMENT[name][1]}"


RULE = Rule(
    id="SLM-SRV-001",
    name="engine-arguments",
    title="Model servers must not run remote code, expose local files or take secrets on the command line",
    severity="high",
    rationale="A model repository or an API client should never get code execution or file access in the server; "
    "a secret on the command line is readable by anyone who can read the pod or the node's process list.",
    remediation="Remove the flag (or the variable); pass secrets through mounted files or secretKeyRef.",
    controls={NSA: ("Application security: secrets and code provenance",), SLM: ("Serving engine configuration",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
