"""SLM-NET-003: egress is allowed to named destinations, not to the whole internet.

A NetworkPolicy that allows ``0.0.0.0/0`` or ``::/0`` (any prefix of length 0) lets a compromised server
send data anywhere; so does a Cilium ``toFQDNs`` pattern that covers every name (``*``) or a whole
top-level domain (``*.com``: in Cilium a ``*`` stands for one or more DNS labels' characters, so one label
after it is a TLD). Download targets should be the model hub's hosts or its proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import NETWORK_POLICY, get, is_map, items
from ...lib.rule import AKS, NSA, Rule

CILIUM_NETWORK_POLICY = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"


def _open_cidr(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _whole_domain(pattern: str) -> bool:
    """``*``, ``*.`` followed by a single label (a TLD), or a pattern with no literal label at all."""
    labels = [label for label in pattern.strip(".").split(".") if label]
    literal = [label for label in labels if "*" not in label]
    return not literal or (labels[0] == "*" and len(literal) < 2)


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.resource_type == NETWORK_POLICY:
        for rule in items(get(args.props, "spec", "egress")):
            for peer in items(get(rule, "to")):
                cidr = get(peer, "ipBlock", "cidr")
                if isinstance(cidr, str) and _open_cidr(cidr):
                    yield f"egress to {cidr}: every address on the internet"
        return
    specs = [get(args.props, "spec"), *items(get(args.props, "specs"))]
    for spec in specs:
        for rule in items(get(spec, "egress")) if is_map(spec) else []:
            for fqdn in items(get(rule, "toFQDNs")):
                pattern = get(fqdn, "matchPattern")
                if isinstance(pattern, str) and _whole_domain(pattern):
                    yield f"toFQDNs matchPattern '{pattern}' covers a whole top-level domain (or every name)"
            for cidr in items(get(rule, "toCIDR")):
                if isinstance(cidr, str) and _open_cidr(cidr):
                    yield f"egress to {cidr}: every address on the internet"


RULE = Rule(
    id="SLM-NET-003",
    name="egress-scope",
    title="Egress must name its destinations, not the whole internet",
    severity="high",
    rationale="Model servers hold weights, prompts and tokens; open egress lets a compromised pod send them anywhere.",
    remediation="Name the model hub's hosts (network.downloadHosts) or its proxy's CIDR (network.downloadCidrs).",
    controls={NSA: ("Network separation and hardening",), AKS: ("NS-1: establish network segmentation boundaries",)},
    resource_types=frozenset({NETWORK_POLICY, CILIUM_NETWORK_POLICY}),
    check=check,
)
