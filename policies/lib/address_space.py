"""How much of the public internet a set of CIDRs reaches, measured with :mod:`ipaddress`.

Egress is judged by the address space it covers, not by its spelling: ``0.0.0.0/1`` plus ``128.0.0.0/1`` is the
whole IPv4 internet although neither prefix has length 0. Special-purpose ranges (private, shared, loopback,
link-local, documentation, multicast, reserved: the IANA registries ``ipaddress`` follows) are not public.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv4 ranges that are not public unicast (disjoint, IANA special-purpose registry plus multicast).
_V4_SPECIAL = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
#: IPv6 global unicast, less its documentation and IETF protocol assignments.
_V6_GLOBAL = ipaddress.IPv6Network("2000::/3")
_V6_SPECIAL = (ipaddress.IPv6Network("2001::/23"), ipaddress.IPv6Network("2001:db8::/32"))


def _overlap(a: Network, b: Network) -> int:
    if a.version != b.version:
        return 0
    if a.subnet_of(b):  # type: ignore[arg-type]
        return a.num_addresses
    if b.subnet_of(a):  # type: ignore[arg-type]
        return b.num_addresses
    return 0


def public_addresses(network: Network) -> int:
    """How many public unicast addresses ``network`` holds."""
    if network.version == 4:
        return network.num_addresses - sum(_overlap(network, s) for s in _V4_SPECIAL)
    return _overlap(network, _V6_GLOBAL) - sum(_overlap(network, s) for s in _V6_SPECIAL)


@lru_cache(maxsize=2)
def public_total(version: int) -> int:
    everything = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
    return public_addresses(everything)


def parse(cidr: str) -> Network | None:
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return None


def public_share(networks: Iterable[Network]) -> float:
    """The largest share of the public IPv4 or IPv6 space the networks cover together (overlaps counted once)."""
    shares = []
    networks = list(networks)
    for version in (4, 6):
        collapsed = list(ipaddress.collapse_addresses(n for n in networks if n.version == version))  # type: ignore[type-var]
        if collapsed:
            shares.append(sum(public_addresses(n) for n in collapsed) / public_total(version))
    return max(shares, default=0.0)


def within(network: Network, allowed: Iterable[Network]) -> bool:
    return any(network.version == a.version and network.subnet_of(a) for a in allowed)  # type: ignore[arg-type]


def below_suffix(name: str, suffixes: Iterable[str]) -> bool:
    """Whether a DNS name (or a Cilium pattern's literal tail) is one of ``suffixes`` or below one."""
    name = name.strip(".").lower()
    return bool(name) and any(name == s or name.endswith(f".{s}") for s in (x.strip(".").lower() for x in suffixes))


def literal_tail(pattern: str) -> str:
    """The labels after a Cilium ``matchPattern``'s last wildcard: ``*.blob.core.windows.net`` → ``blob.core…``."""
    labels = [label for label in pattern.strip(".").split(".") if label]
    tail: list[str] = []
    for label in reversed(labels):
        if "*" in label:
            break
        tail.append(label)
    return ".".join(reversed(tail))
