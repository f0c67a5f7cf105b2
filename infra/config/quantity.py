"""Kubernetes resource quantities (``500m``, ``2``, ``16Gi``), parsed the way the API server does."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^(?P<number>[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)(?P<suffix>[a-zA-Z]*)$")


def parse_quantity(text: str) -> Decimal:
    """The quantity's value in base units (cores or bytes); ``ValueError`` when it does not parse."""
    match = _QUANTITY.fullmatch(text.strip())
    if not match or match["suffix"] not in _SUFFIXES:
        raise ValueError(f"'{text}' is not a Kubernetes quantity (examples: 500m, 2, 512Mi, 16Gi)")
    if match["suffix"] and re.search("[eE]", match["number"]):
        raise ValueError(f"'{text}' is not a Kubernetes quantity (an exponent takes no suffix)")
    try:
        return Decimal(match["number"]) * _SUFFIXES[match["suffix"]]
    except InvalidOperation as error:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"'{text}' is not a Kubernetes quantity") from error


def gibibytes(text: str) -> float:
    """A memory quantity in GiB."""
    return float(parse_quantity(text) / _SUFFIXES["Gi"])


#: What a container writes to node disk besides its emptyDirs: its logs (the kubelet keeps at most
#: ``containerLogMaxFiles`` 5 files of ``containerLogMaxSize`` 10 Mi per container by default, AKS included) and its
#: writable layer (nearly nothing on a read-only root filesystem). docs/scheduling.md.
EPHEMERAL_STORAGE_MARGIN = "512Mi"


def ephemeral_storage(size_limits: Iterable[str], margin: str = EPHEMERAL_STORAGE_MARGIN) -> str:
    """The ephemeral-storage a pod's disk-backed emptyDirs may fill, plus ``margin``, in whole MiB.

    The kubelet evicts a pod whose emptyDirs and containers together write more than the sum of its containers'
    ephemeral-storage limits, and the scheduler places it by the requests: both come from the emptyDirs'
    ``sizeLimit``.
    """
    total = sum((parse_quantity(limit) for limit in size_limits), parse_quantity(margin))
    return f"{math.ceil(total / _SUFFIXES['Mi'])}Mi"
