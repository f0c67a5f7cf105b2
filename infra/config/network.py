"""Network isolation of the model servers (`network:`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.config.base import ConfigModel, KeyPathError
from infra.config.names import DnsLabel

_HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: Namespaces whose pods must never be let in to a model server directly: the cluster's own (anything running
#: there, including a compromised add-on, would skip the entry point's key check).
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "default"})


def cidr_block(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``value`` as an address block, or a ValueError saying it is not one (the stack keys that list CIDRs)."""
    try:
        return ipaddress.ip_network(value)
    except ValueError as error:
        raise ValueError(f"'{value}' is not a CIDR block") from error


class NetworkConfig(ConfigModel):
    """Who may talk to the model servers, and where they may connect."""

    ingress_from_namespaces: list[DnsLabel] = Field(
        default_factory=list, description="Namespaces whose pods may call the model port."
    )
    model_download: Literal["allow", "deny"] = Field(
        "deny", description="Allow egress to `downloadCidrs` (HTTPS) so servers fetch weights at start-up."
    )
    download_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs of the model hub (or its proxy), for `modelDownload: allow` with plain NetworkPolicy.",
    )
    policy_engine: Literal["kubernetes", "cilium"] = Field(
        "kubernetes",
        description="`cilium` adds a CiliumNetworkPolicy that allows downloads by host name (`downloadHosts`).",
    )
    download_hosts: list[str] = Field(
        default_factory=list,
        description="Host names (or `*.` patterns) of the model hub, for `modelDownload: allow` with Cilium.",
    )

    def check_ingress_peers(self, own: dict[str, str]) -> None:
        """Refuse the stack's own platform namespaces (gateway, monitoring …: ``own`` maps each to its key) as
        direct callers: they have their own, narrower way in."""
        for index, namespace in enumerate(self.ingress_from_namespaces):
            if namespace in SYSTEM_NAMESPACES:
                raise KeyPathError(
                    ("network", "ingressFromNamespaces", index),
                    f"'{namespace}' is a system namespace: its pods would reach the model servers without the "
                    "entry point's key check; name the namespace of the calling application instead",
                )
            if namespace in own:
                raise KeyPathError(
                    ("network", "ingressFromNamespaces", index),
                    f"'{namespace}' is the stack's {own[namespace]} namespace: it already has its own way in "
                    "(the gateway's routes, the metrics port); name the namespace of the calling application",
                )

    @field_validator("download_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            cidr_block(cidr)
        return value

    @field_validator("download_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            name = host.removeprefix("*.")
            if not name or any(not _HOST_LABEL.fullmatch(label) for label in name.split(".")):
                raise ValueError(f"'{host}' is not a host name (or a '*.' pattern)")
        return value

    @model_validator(mode="after")
    def _download_needs_targets(self) -> NetworkConfig:
        if self.model_download == "allow":
            if self.policy_engine == "kubernetes" and not self.download_cidrs:
                raise ValueError("modelDownload is 'allow' but downloadCidrs is empty")
            if self.policy_engine == "cilium" and not self.download_hosts:
                raise ValueError("modelDownload is 'allow' with policyEngine 'cilium' but downloadHosts is empty")
        return self
