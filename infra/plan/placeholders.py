"""What the offline plan answers where only a cloud could: every value a clearly marked placeholder."""

from __future__ import annotations

import base64
from typing import Any

LIST_USER_CREDENTIALS = "azure-native:containerservice:listManagedClusterUserCredentials"
GET_RESOURCE_GROUP = "azure-native:resources:getResourceGroup"
#: PLACEHOLDER: the server of the kubeconfig the offline plan answers with (.invalid never resolves).
PLACEHOLDER_SERVER = "https://placeholder.invalid:443"
#: PLACEHOLDER kubeconfig, as AKS returns it for an Entra ID cluster with format=exec (kubelogin).
PLACEHOLDER_KUBECONFIG = f"""\
apiVersion: v1
kind: Config
clusters:
- name: placeholder-cluster
  cluster:
    server: {PLACEHOLDER_SERVER}
    certificate-authority-data: cGxhY2Vob2xkZXItY2E=
contexts:
- name: placeholder-cluster
  context: {{cluster: placeholder-cluster, user: clusterUser_placeholder}}
current-context: placeholder-cluster
users:
- name: clusterUser_placeholder
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --environment, AzurePublicCloud, --server-id, placeholder-server-id, --client-id,
             placeholder-client-id, --tenant-id, placeholder-tenant-id, --login, devicecode]
      interactiveMode: IfAvailable
      provideClusterInfo: false
"""
PLACEHOLDER_KUBECONFIG_B64 = base64.b64encode(PLACEHOLDER_KUBECONFIG.encode()).decode()
#: Every placeholder id (subscription, tenant, client, object): clearly not a real one.
PLACEHOLDER_UUID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_SUBSCRIPTION = PLACEHOLDER_UUID
GET_CLIENT_CONFIG = "azure-native:authorization:getClientConfig"

#: What the offline plan answers for the invokes the program makes (every value a placeholder:
#: no cloud is asked, and reports say so). getResourceGroup echoes its arguments: see PlanMocks.call.
INVOKE_ANSWERS: dict[str, Any] = {
    LIST_USER_CREDENTIALS: {"kubeconfigs": [{"name": "clusterUser", "value": PLACEHOLDER_KUBECONFIG_B64}]},
    GET_CLIENT_CONFIG: {key: PLACEHOLDER_UUID for key in ("clientId", "objectId", "subscriptionId", "tenantId")},
}
#: Outputs that only the provider computes, per resource type (besides Kubernetes' uid and status).
COMPUTED_OUTPUTS: dict[str, tuple[str, ...]] = {
    "azure-native:managedidentity:UserAssignedIdentity": ("clientId", "principalId", "tenantId"),
}
#: The input that holds an azure-native resource's Azure name, per type (the provider echoes it as ``name``).
NAME_INPUT = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:containerservice:ManagedCluster": "resourceName",
    "azure-native:containerservice:AgentPool": "agentPoolName",
}
