"""SLM-K8S-016: secrets only by reference (secretKeyRef, mounted secrets), never as literals."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from itertools import pairwise
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import CONFIG_MAP, WORKLOAD_TYPES, containers, get, is_map, items, pod_template
from ...lib.rule import AKS, NSA, Rule

#: Name parts that make an environment variable secret-ish (matched on whole words of the name,
#: so MAX_NUM_BATCHED_TOKENS and TOKENIZERS_PARALLELISM are not secrets).
SECRET_WORDS = frozenset(
    {
        "TOKEN",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWD",
        "APIKEY",
        "KEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "PRIVATEKEY",
        "CONNECTIONSTRING",
        "AUTH",
    }
)
#: Values that look like credentials whatever the variable is called.
CREDENTIAL_PATTERNS = (
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    ("an OpenAI-style API key", re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("an AWS access key id", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("an Azure storage account key", re.compile(r"AccountKey=[A-Za-z0-9+/=]{20,}")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.")),
)
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def secret_like_name(name: str) -> bool:
    words = [w.upper() for w in _WORD_SPLIT.split(name) if w]
    joined = {a + b for a, b in pairwise(words)}
    return bool(SECRET_WORDS & (set(words) | joined))


def credential_kind(value: str) -> str | None:
    for kind, pattern in CREDENTIAL_PATTERNS:
        if pattern.search(value):
            return kind
    return None


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.resource_type == CONFIG_MAP:
        data = get(args.props, "data", default={})
        if is_map(data):
            for key in data:
                kind = credential_kind(str(data[key]))
                if kind:
                    yield f"ConfigMap key '{key}' holds what looks like {kind}; keep it in a Secret"
        return
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        for entry in items(get(c.body, "env")):
            name = str(get(entry, "name", default=""))
            value = get(entry, "value")
            if value is None or value == "":
                continue
            kind = credential_kind(str(value))
            if kind:
                yield f"{c.label}: env {name} holds what looks like {kind} as a literal; use valueFrom.secretKeyRef"
            elif secret_like_name(name):
                yield f"{c.label}: env {name} looks like a secret but is a literal value; use valueFrom.secretKeyRef"
        for field in ("command", "args"):
            for index, word in enumerate(items(get(c.body, field))):
                kind = credential_kind(str(word))
                if kind:
                    yield f"{c.label}: {field}[{index}] holds what looks like {kind}; read it from a Secret"


RULE = Rule(
    id="SLM-K8S-016",
    name="secrets-by-reference",
    title="Secrets must be passed by reference, never as literal values",
    severity="critical",
    rationale="A literal token ends up in the pod spec, in etcd, in the Pulumi state and in every plan output.",
    remediation="Store the value in a Secret (or Key Vault via the CSI driver) and use env[].valueFrom.secretKeyRef.",
    controls={NSA: ("Secrets",), AKS: ("IM-8: restrict the exposure of credentials and secrets",)},
    resource_types=WORKLOAD_TYPES | {CONFIG_MAP},
    check=check,
)
