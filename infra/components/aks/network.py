"""The resource group (created, or an existing one looked up by name), the virtual network and the node subnet."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network, resources

from infra.config.cluster import AksCluster as AksClusterConfig


@dataclass
class AksNetworkArgs:
    cluster: AksClusterConfig
    #: protect=True on the resource group when the stack creates it (prod).
    protect: bool = False


class AksNetwork(pulumi.ComponentResource):
    """Resource group, virtual network and node subnet of one AKS cluster."""

    #: None when the stack uses an existing resource group.
    resource_group: resources.ResourceGroup | None
    resource_group_name: pulumi.Output[str]
    location: pulumi.Output[str]
    virtual_network: network.VirtualNetwork
    node_subnet: network.Subnet
    node_subnet_id: pulumi.Output[str]

    def __init__(self, name: str, args: AksNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm-deploy:aks:AksNetwork", name, None, opts)
        config = args.cluster
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(config.tags)

        if config.existing_resource_group:
            self.resource_group = None
            # An invoke: the group must exist; its location is where the cluster goes unless told otherwise.
            found = resources.get_resource_group_output(
                resource_group_name=config.resource_group, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.resource_group_name = found.name
            self.location = pulumi.Output.from_input(config.location)
        else:
            self.resource_group = resources.ResourceGroup(
                f"{name}-resource-group",
                resources.ResourceGroupArgs(
                    resource_group_name=config.resource_group, location=config.location, tags=tags
                ),
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            self.resource_group_name = self.resource_group.name
            self.location = self.resource_group.location

        self.virtual_network = network.VirtualNetwork(
            f"{name}-vnet",
            network.VirtualNetworkInitArgs(
                resource_group_name=self.resource_group_name,
                virtual_network_name=f"{config.name}-vnet",
                location=self.location,
                address_space=network.AddressSpaceArgs(address_prefixes=[config.network.vnet_cidr]),
                tags=tags,
            ),
            # Subnets are separate resources: an inline list would fight with them on every update.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        self.node_subnet = network.Subnet(
            f"{name}-node-subnet",
            network.SubnetInitArgs(
                resource_group_name=self.resource_group_name,
                virtual_network_name=self.virtual_network.name,
                subnet_name="nodes",
                address_prefix=config.network.node_subnet_cidr,
                # Nodes reach the internet through the cluster's load balancer, never by default outbound access.
                default_outbound_access=False,
            ),
            opts=child,
        )
        self.node_subnet_id = self.node_subnet.id
        self.register_outputs(
            {
                "resourceGroupName": self.resource_group_name,
                "virtualNetworkName": self.virtual_network.name,
                "nodeSubnetId": self.node_subnet_id,
            }
        )
