"""Network isolation of the model servers (`network:`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.config.base import ConfigModel
from infra.config.names import DnsLabel

_HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


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

    @field_validator("download_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr)
            except ValueError as error:
                raise ValueError(f"'{cidr}' is not a CIDR block") from error
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
