"""Helpers to read a Helm release (``kubernetes:helm.sh/v3:Release``) as the engine hands it to a policy.

The pack sees the values slm-deploy passes to the chart (its own defaults merged with the stack's
settings), not the chart's own defaults: those are not known offline. Rules therefore read what the
values switch on, and keep, as data, what a chart runs with elevated rights by default.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .k8s import get, is_list, is_map

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def chart_name(props: Mapping[str, Any]) -> str:
    """The chart's name, without an OCI or repository prefix (``oci://…/gateway-helm`` → ``gateway-helm``)."""
    return str(get(props, "chart", default="")).rstrip("/").rsplit("/", 1)[-1]


def release_namespace(props: Mapping[str, Any]) -> str:
    return str(get(props, "namespace", default="") or "default")


def values(props: Mapping[str, Any]) -> Mapping[str, Any]:
    found = get(props, "values", default={})
    return found if is_map(found) else {}


def walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every mapping below ``value`` with its path (list items as ``[i]``)."""
    if is_map(value):
        yield path, value
        for key in value:
            yield from walk(value[key], (*path, str(key)))
    elif is_list(value):
        for index, item in enumerate(value):
            yield from walk(item, (*path, f"[{index}]"))


def dotted(path: tuple[str, ...]) -> str:
    return ".".join(path).replace(".[", "[") or "(values)"
