"""SLM-NET-003: egress goes to destinations the level knows, not to the internet.

Positive model, judged by what the rules reach rather than how they are spelled:

- CIDRs (NetworkPolicy ``ipBlock``, Cilium ``toCIDR``/``toCIDRSet``) are measured with :mod:`ipaddress`
  (:mod:`policies.lib.address_space`): a CIDR that reaches public addresses outside the level's
  ``allowedPublicCidrs`` is refused, and so is a set of CIDRs that together covers more than
  ``maxPublicShare`` of the public IPv4 (or IPv6) space (``0.0.0.0/1`` + ``128.0.0.0/1`` is all of it).
  Private ranges (a proxy in the VNet) pass.
- Cilium ``toFQDNs`` names and patterns must lie at or below a suffix of ``allowedSuffixes`` (the Hub's
  download hosts by default: ``huggingface.co``, ``hf.co``): ``*.blob.core.windows.net`` and ``*.co.uk`` are
  refused, ``*.hf.co`` passes.

Each finding's subject is the CIDR or the host pattern; a waiver covers the one it names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.address_space import Network, below_suffix, literal_tail, parse, public_addresses, public_share, within
from ...lib.finding import Finding
from ...lib.k8s import NETWORK_POLICY, get, is_map, items
from ...lib.rule import AKS, NSA, Rule

CILIUM_NETWORK_POLICY = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"
DEFAULT_SUFFIXES = ["huggingface.co", "hf.co"]
DEFAULT_MAX_PUBLIC_SHARE = 0.0001


def _cidrs(args: ResourceValidationArgs) -> list[str]:
    if args.resource_type == NETWORK_POLICY:
        return [
            str(cidr)
            for rule in items(get(args.props, "spec", "egress"))
            for peer in items(get(rule, "to"))
            if isinstance(cidr := get(peer, "ipBlock", "cidr"), str)
        ]
    found: list[str] = []
    for spec in [get(args.props, "spec"), *items(get(args.props, "specs"))]:
        for rule in items(get(spec, "egress")) if is_map(spec) else []:
            found.extend(str(c) for c in items(get(rule, "toCIDR")) if isinstance(c, str))
            found.extend(str(get(c, "cidr")) for c in items(get(rule, "toCIDRSet")) if isinstance(get(c, "cidr"), str))
    return found


def _hosts(args: ResourceValidationArgs) -> list[tuple[str, str]]:
    """``(field, value)`` of every toFQDNs entry."""
    found: list[tuple[str, str]] = []
    for spec in [get(args.props, "spec"), *items(get(args.props, "specs"))]:
        for rule in items(get(spec, "egress")) if is_map(spec) else []:
            for fqdn in items(get(rule, "toFQDNs")):
                for key in ("matchName", "matchPattern"):
                    if isinstance(value := get(fqdn, key), str):
                        found.append((key, value))
    return found


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = [n for n in (parse(str(c)) for c in config.get("allowedPublicCidrs") or []) if n is not None]
    networks: list[Network] = []
    judged = 0
    for cidr in _cidrs(args):
        network = parse(cidr)
        if network is None:
            continue
        networks.append(network)
        public = public_addresses(network)
        if network.prefixlen == 0:
            judged += 1
            yield Finding(f"egress to {cidr}: every address on the internet", subject=cidr)
        elif public and not within(network, allowed):
            judged += 1
            yield Finding(
                f"egress to {cidr} reaches {public:,} public addresses outside the level's allowedPublicCidrs",
                subject=cidr,
            )
    share = public_share(networks)
    limit = float(config.get("maxPublicShare", DEFAULT_MAX_PUBLIC_SHARE))
    # Also over allowed ranges: a level's list cannot admit more than its share (one finding per CIDR suffices
    # when a single CIDR is already refused).
    if share > limit and (len(networks) > 1 or not judged):
        listed = ", ".join(str(n) for n in networks)
        yield Finding(
            f"egress CIDRs {listed} together cover {share:.2%} of the public address space (at most {limit:.4%} here)",
            subject=listed,
        )
    suffixes = [str(s) for s in config.get("allowedSuffixes") or DEFAULT_SUFFIXES]
    for key, value in _hosts(args):
        name = value if key == "matchName" else literal_tail(value)
        if not below_suffix(name, suffixes):
            yield Finding(
                f"toFQDNs {key} '{value}' is not below a suffix the level allows ({', '.join(suffixes)})",
                subject=value,
            )


RULE = Rule(
    id="SLM-NET-003",
    name="egress-scope",
    title="Egress must name its destinations, not the whole internet",
    severity="high",
    rationale="Model servers hold weights, prompts and tokens; open egress lets a compromised pod send them anywhere.",
    remediation=(
        "Name the model hub's hosts (network.downloadHosts) or its proxy's private CIDR (network.downloadCidrs); a "
        "public range or another suffix is added to allowedPublicCidrs/allowedSuffixes in policies/config/<level>.json "
        "after review."
    ),
    controls={NSA: ("Network separation and hardening",), AKS: ("NS-1: establish network segmentation boundaries",)},
    resource_types=frozenset({NETWORK_POLICY, CILIUM_NETWORK_POLICY}),
    config={
        "allowedPublicCidrs": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Public CIDRs egress may reach at this level (private ranges always may).",
        },
        "maxPublicShare": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": DEFAULT_MAX_PUBLIC_SHARE,
            "description": "Largest share of the public IPv4/IPv6 space one policy's CIDRs may cover together.",
        },
        "allowedSuffixes": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_SUFFIXES,
            "description": "DNS suffixes toFQDNs names and patterns must lie at or below.",
        },
    },
    check=check,
    subject="CIDR or host pattern",
)
