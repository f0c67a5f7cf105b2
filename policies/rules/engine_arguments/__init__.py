"""SLM-SRV-001: model servers run without flags that execute remote code, expose local files or put a
secret on the command line.

The engine's own reading counts, not the text (:mod:`policies.lib.engine_flags`): vLLM reads
``--trust_remote_code`` as ``--trust-remote-code`` and ``--flag=value`` as ``--flag value``; llama.cpp reads
``--slot_save_path`` as ``--slot-save-path`` and every option from its ``LLAMA_ARG_*`` variable. Named as
dangerous at every level:

- remote code: vLLM ``--trust-remote-code``, ``--tool-parser-plugin``, ``--middleware``;
- local-file serving: vLLM ``--allowed-local-media-path``, llama.cpp ``--path``, ``--media-path``;
- model URLs: llama.cpp ``--model-url``/``-mu``, ``--hf-repo``/``-hf``, ``--docker-repo``;
- runtime LoRA, props and slot saving: ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``, llama.cpp ``--lora*``,
  ``--props``, ``--slot-save-path``;
- origins ``*``: vLLM ``--allowed-origins``, llama.cpp ``--cors-origins``, ``OLLAMA_ORIGINS``;
- ``--api-key``, ``--hf-token``, ``--token`` with a value: the secret is in the pod spec, in ``ps`` on the
  node and in every log that prints the command (pass it by file or ``secretKeyRef`` instead);
- ``$(VAR)`` in a command or argument: the kubelet pastes that variable's value in (a secret's too).

Flags outside the engine's allow-list are ``engine-argument-allow-list``'s (mandatory in prod).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.engine_flags import DANGEROUS_ENV, VLLM, danger, engine_of, settings
from ...lib.finding import Finding
from ...lib.k8s import WORKLOAD_TYPES, containers, get, items, pod_template
from ...lib.rule import NSA, SLM, Rule

#: Flags whose value is a secret: given on the command line, it leaks into the pod spec and process list.
SECRET_FLAGS = ("--api-key", "--hf-token", "--token", "-hft")
_REFERENCE = re.compile(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for container in containers(pod.spec):
        tokens = [str(t) for t in (*items(get(container.body, "command")), *items(get(container.body, "args")))]
        for index, token in enumerate(tokens):
            flag = token.split("=", 1)[0].replace("_", "-") if token.startswith("--") else token.split("=", 1)[0]
            if flag in SECRET_FLAGS and ("=" in token or index + 1 < len(tokens)):
                yield Finding(
                    f"{container.label} passes a secret on the command line ({flag}): mount it as a file instead",
                    subject=flag,
                )
            for name in _REFERENCE.findall(token):
                yield f"{container.label} expands $({name}) in its command line: the variable's value is pasted in"
        # An unknown server is read as vLLM reads its flags (the widest reading of the two argparse engines).
        engine = engine_of(container.body) or VLLM
        for setting in settings(engine, container.body):
            what = danger(engine, setting)
            if what is None:
                continue
            if setting.from_env:
                yield Finding(
                    f"{container.label} sets {setting.written}={setting.value}: it {what}", subject=setting.name
                )
            else:
                yield Finding(f"{container.label} passes {setting.written}: it {what}", subject=setting.name)


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
    subject="engine flag",
)

__all__ = ["DANGEROUS_ENV", "RULE", "SECRET_FLAGS"]
