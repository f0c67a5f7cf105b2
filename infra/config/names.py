"""Validators for names and quantities that Kubernetes will later insist on."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from infra.config.k8s_names import DNS_LABEL, DNS_SUBDOMAIN, LABEL_KEY, LABEL_VALUE, refuse, show
from infra.config.quantity import parse_quantity
from policies.lib import label_keys

#: A Kubernetes variable reference: the kubelet expands it in a container's command, args and env values.
_VARIABLE_REFERENCE = re.compile(r"(?<!\$)\$\([A-Za-z_][A-Za-z0-9_]*\)")
#: Label prefixes the framework owns: Pod Security Admission levels come from the hardening, never a stack.
RESERVED_LABEL_PREFIXES = ("pod-security.kubernetes.io/",)


def _dns_label(value: str) -> str:
    return refuse(DNS_LABEL, value)


def _number_as_text(value: object) -> object:
    # YAML reads `cpu: 2` as a number; Kubernetes accepts it, so do we.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, "g")
    return value


def _quantity(value: str) -> str:
    if value != value.strip():
        raise ValueError(f"{show(value)} has spaces around it: a Kubernetes quantity has none")
    if parse_quantity(value) <= 0:
        raise ValueError(f"'{value}' must be greater than zero")
    return value


def _label_key(key: str) -> str:
    refuse(LABEL_KEY, key, "label key")
    if any(key.startswith(reserved) for reserved in RESERVED_LABEL_PREFIXES):
        raise ValueError(
            f"label key {show(key)} is set by slm-deploy from the hardening defaults (Pod Security Admission): a "
            "stack cannot set or weaken it"
        )
    why = label_keys.refused(key)
    if why is not None:
        raise ValueError(f"label key {show(key)} is refused: {why}")
    return key


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, text in value.items():
        _label_key(key)
        problem = LABEL_VALUE.problem(text)
        if problem is not None:
            raise ValueError(
                f"label {show(key)}: the value {show(text)} is not {LABEL_VALUE.title}: {problem} "
                f"({LABEL_VALUE.summary})"
            )
    return value


def _storage_class(value: str) -> str:
    return refuse(DNS_SUBDOMAIN, value, "StorageClass name")


def _no_variable_reference(value: str) -> str:
    found = _VARIABLE_REFERENCE.search(value)
    if found:
        raise ValueError(
            f"contains {found.group(0)}: the kubelet would replace it with the value of that environment "
            "variable (a secret's too) in the container's arguments; write $$(…) for a literal"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
#: The name of a StorageClass (a DNS-1123 subdomain).
StorageClassName = Annotated[str, AfterValidator(_storage_class)]
#: Text that lands in a container's command, arguments or environment: no ``$(VAR)`` expansion.
ContainerText = Annotated[str, AfterValidator(_no_variable_reference)]
#: Labels a stack adds to objects: keys and values as the API server accepts them, no reserved prefix.
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_quantity)]
