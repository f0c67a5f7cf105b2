"""Validators for names and quantities that Kubernetes will later insist on."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from infra.config.quantity import parse_quantity

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a valid Kubernetes DNS label "
            "(lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63)"
        )
    return value


def _number_as_text(value: object) -> object:
    # YAML reads `cpu: 2` as a number; Kubernetes accepts it, so do we.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, "g")
    return value


def _quantity(value: str) -> str:
    if parse_quantity(value) <= 0:
        raise ValueError(f"'{value}' must be greater than zero")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_quantity)]
