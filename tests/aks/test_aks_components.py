"""The AKS components under the Pulumi mock engine, in preview and in update mode: the camelCase inputs the
engine would send for the cluster, the pools and the GPU drivers, options (protect, provider), and the
kubeconfig kept secret."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from aks_cases import aks_config, named, of_type, planned

from infra import gpu
from infra.components.aks.cluster import kubeconfig_for
from infra.components.aks.gpu_drivers import DCGM_EXPORTER, DEVICE_PLUGIN, GPU_OPERATOR, SPOT_TOLERATION
from infra.config.cluster import CRITICAL_ADDONS_TAINT
from infra.plan.engine import PlanRun
from infra.plan.model import UNKNOWN, RecordedResource, Secret
from infra.plan.placeholders import GET_RESOURCE_GROUP, LIST_USER_CREDENTIALS, PLACEHOLDER_SERVER

MODES = pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_PROVIDER = "pulumi:providers:kubernetes"


def prod(preview: bool) -> PlanRun:
    return planned(aks_config(), preview=preview, protect=True, key="prod")


def dev_spot(preview: bool) -> PlanRun:
    config = aks_config(
        name="slm-dev",
        skuTier="Free",
        userPool=None,
        gpuPools=[{"name": "t4spot", "vmSize": "Standard_NC4as_T4_v3", "minCount": 0, "maxCount": 2, "spot": True}],
    )
    return planned(config, preview=preview, protect=False, key="dev-spot")


def operator(preview: bool) -> PlanRun:
    config = aks_config(
        apiServer={"private": True},
        existingResourceGroup=True,
        userAssignedIdentityId="/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/aks",
        gpuPools=[{"name": "h100", "vmSize": "Standard_NC80adis_H100_v5", "gpuDriver": "none", "maxCount": 2}],
    )
    return planned(config, preview=preview, protect=True, key="operator")


def cluster_of(run: PlanRun) -> RecordedResource:
    clusters = of_type(run.resources, MANAGED_CLUSTER)
    assert len(clusters) == 1
    return clusters[0]


def gpu_agent_pools(run: PlanRun) -> dict[str, RecordedResource]:
    return {
        r.inputs["agentPoolName"]: r
        for r in of_type(run.resources, AGENT_POOL)
        if r.parent and "GpuNodePool" in r.parent
    }


def releases(run: PlanRun) -> dict[str, RecordedResource]:
    return {r.inputs["chart"]: r for r in of_type(run.resources, RELEASE)}


def expected_tolerations(*, spot: bool = False) -> list[dict[str, str]]:
    expected = [
        {"key": t.key, "operator": t.operator, "effect": t.effect, **({"value": t.value} if t.value else {})}
        for t in gpu.tolerations()
    ]
    return [*expected, SPOT_TOLERATION] if spot else expected


def plain_text(value: Any) -> str:
    """Every plain (non-secret) value of a recorded input tree as text; secrets show as their marker."""
    if isinstance(value, dict):
        return " ".join(f"{k} {plain_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(plain_text(v) for v in value)
    return str(value)


@MODES
def test_cluster_is_hardened(preview: bool) -> None:
    run = prod(preview)
    cluster = cluster_of(run)
    inputs = cluster.inputs
    assert inputs["resourceName"] == "slm-prod"
    assert inputs["kubernetesVersion"] == "1.31"
    assert inputs["aadProfile"] == {
        "managed": True,
        "enableAzureRBAC": True,
        "adminGroupObjectIDs": ["11111111-2222-3333-4444-555555555555"],
    }
    assert inputs["disableLocalAccounts"] is True
    assert inputs["enableRBAC"] is True
    assert inputs["apiServerAccessProfile"] == {
        "enablePrivateCluster": False,
        "authorizedIPRanges": ["203.0.113.0/24"],
    }
    assert inputs["oidcIssuerProfile"] == {"enabled": True}
    assert inputs["securityProfile"]["workloadIdentity"] == {"enabled": True}
    network = inputs["networkProfile"]
    assert (network["networkPlugin"], network["networkPolicy"], network["networkDataplane"]) == (
        "azure",
        "cilium",
        "cilium",
    )
    assert network["networkPluginMode"] == "overlay"
    assert (network["podCidr"], network["serviceCidr"], network["dnsServiceIP"]) == (
        "10.244.0.0/16",
        "10.0.0.0/16",
        "10.0.0.10",
    )
    addon = inputs["addonProfiles"]["azureKeyvaultSecretsProvider"]
    assert addon["enabled"] is True
    assert addon["config"]["enableSecretRotation"] == "true"
    assert inputs["autoUpgradeProfile"] == {"upgradeChannel": "stable", "nodeOSUpgradeChannel": "NodeImage"}
    assert inputs["identity"] == {"type": "SystemAssigned"}
    assert inputs["sku"] == {"name": "Base", "tier": "Standard"}
    assert inputs["tags"] == {"team": "ml-platform"}
    # The system pool is the only inline pool, tainted for critical add-ons only.
    (system,) = inputs["agentPoolProfiles"]
    assert system["name"] == "system"
    assert system["mode"] == "System"
    assert system["nodeTaints"] == [CRITICAL_ADDONS_TAINT] == ["CriticalAddonsOnly=true:NoSchedule"]
    assert system["vmSize"] == "Standard_D4ds_v5"
    assert (system["enableAutoScaling"], system["minCount"], system["maxCount"]) == (True, 2, 3)
    assert system["availabilityZones"] == ["1", "2", "3"]
    assert system["enableNodePublicIP"] is False
    assert cluster.protect is True


@MODES
def test_private_cluster_with_user_assigned_identity(preview: bool) -> None:
    inputs = cluster_of(operator(preview)).inputs
    assert inputs["apiServerAccessProfile"] == {"enablePrivateCluster": True}
    assert inputs["identity"]["type"] == "UserAssigned"
    assert inputs["identity"]["userAssignedIdentities"][0].endswith("/userAssignedIdentities/aks")


@MODES
def test_gpu_pools_carry_the_taint_and_labels_the_models_use(preview: bool) -> None:
    run = prod(preview)
    pools = gpu_agent_pools(run)
    assert sorted(pools) == ["a100", "t4"]
    config = aks_config()
    for spec in config.gpu_pools:
        inputs = pools[spec.name].inputs
        assert inputs["mode"] == "User"
        assert inputs["vmSize"] == spec.vm_size
        assert inputs["nodeTaints"] == [gpu.pool_taint()]
        assert inputs["nodeLabels"] == gpu.pool_node_labels(spec.name) == gpu.node_selector(spec.name)
        assert (inputs["enableAutoScaling"], inputs["minCount"], inputs["maxCount"]) == (
            True,
            spec.min_count,
            spec.max_count,
        )
        assert inputs["scaleSetPriority"] == "Regular"
        assert "scaleSetEvictionPolicy" not in inputs and "spotMaxPrice" not in inputs
        assert inputs["gpuProfile"] == {"driver": "Install"}
        assert inputs["osType"] == "Linux"
        assert inputs["osSKU"] == "Ubuntu"
        assert inputs["tags"] == {"team": "ml-platform"}
        assert pools[spec.name].protect is True
        # The pool names its cluster through the cluster's output: unknown in preview, so it waits for it.
        assert inputs["resourceName"] == (UNKNOWN if preview else "slm-prod")
    assert pools["a100"].inputs["availabilityZones"] == ["1", "2"]
    assert "availabilityZones" not in pools["t4"].inputs


@MODES
def test_user_pool_is_untainted_and_regular(preview: bool) -> None:
    run = prod(preview)
    (user,) = [r for r in of_type(run.resources, AGENT_POOL) if r.parent and "UserNodePool" in r.parent]
    assert user.inputs["agentPoolName"] == "user"
    assert user.inputs["mode"] == "User"
    assert "nodeTaints" not in user.inputs
    assert user.inputs["scaleSetPriority"] == "Regular"
    assert user.protect is True


@MODES
def test_spot_pool_outside_prod(preview: bool) -> None:
    run = dev_spot(preview)
    (pool,) = gpu_agent_pools(run).values()
    inputs = pool.inputs
    assert inputs["scaleSetPriority"] == "Spot"
    assert inputs["scaleSetEvictionPolicy"] == "Delete"
    assert inputs["spotMaxPrice"] == -1
    assert inputs["minCount"] == 0
    assert inputs["nodeTaints"] == [gpu.pool_taint()]
    # Not protected outside prod, and no user pool when it is switched off.
    assert pool.protect is False
    assert cluster_of(run).protect is False
    assert named(run.resources, "aks-network-resource-group").protect is False
    assert all("UserNodePool" not in (r.parent or "") for r in run.resources)
    device_plugin = releases(run)[DEVICE_PLUGIN.chart]
    assert device_plugin.inputs["values"]["tolerations"] == expected_tolerations(spot=True)


@MODES
def test_resource_group_and_network(preview: bool) -> None:
    run = prod(preview)
    group = named(run.resources, "aks-network-resource-group")
    assert group.inputs == {
        "resourceGroupName": "rg-slm-prod",
        "location": "westeurope",
        "tags": {"team": "ml-platform"},
    }
    assert group.protect is True
    vnet = named(run.resources, "aks-network-vnet")
    assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.224.0.0/12"]}
    subnet = named(run.resources, "aks-network-node-subnet")
    assert subnet.inputs["addressPrefix"] == "10.224.0.0/16"
    assert subnet.inputs["defaultOutboundAccess"] is False
    assert cluster_of(run).inputs["agentPoolProfiles"][0]["vnetSubnetID"] == "placeholder-id-aks-network-node-subnet"


@MODES
def test_existing_resource_group_is_looked_up_not_created(preview: bool) -> None:
    run = operator(preview)
    assert not of_type(run.resources, "azure-native:resources:ResourceGroup")
    assert [token for token, _ in run.invokes].count(GET_RESOURCE_GROUP) == 1
    assert named(run.resources, "aks-network-vnet").inputs["resourceGroupName"] == "rg-slm-prod"


@MODES
def test_kubeconfig_is_a_secret_and_never_plain_text(preview: bool) -> None:
    run = prod(preview)
    (provider,) = of_type(run.resources, K8S_PROVIDER)
    kubeconfig = provider.inputs["kubeconfig"]
    if preview:
        # A new cluster's name is unknown in preview: the credentials invoke waits, the kubeconfig is unknown.
        assert kubeconfig in (UNKNOWN, Secret(UNKNOWN))
        assert LIST_USER_CREDENTIALS not in [token for token, _ in run.invokes]
    else:
        assert isinstance(kubeconfig, Secret)
        document = yaml.safe_load(kubeconfig.value)
        assert document["clusters"][0]["cluster"]["server"] == PLACEHOLDER_SERVER
        args = document["users"][0]["user"]["exec"]["args"]
        assert args[args.index("--login") + 1] == "azurecli"
        assert [token for token, _ in run.invokes].count(LIST_USER_CREDENTIALS) == 1
    for resource in run.resources:
        text = plain_text(resource.inputs)
        assert PLACEHOLDER_SERVER not in text, resource.name
        assert "kubelogin" not in text, resource.name
    # Every Kubernetes object goes through the cluster's provider.
    for resource in run.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider == provider.urn, resource.name


@MODES
def test_device_plugin_and_dcgm_exporter_releases(preview: bool) -> None:
    run = prod(preview)
    charts = releases(run)
    assert sorted(charts) == sorted([DEVICE_PLUGIN.chart, DCGM_EXPORTER.chart])
    expected_affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}
                    for pool in ("a100", "t4")
                    for key, value in gpu.node_selector(pool).items()
                ]
            }
        }
    }
    for ref in (DEVICE_PLUGIN, DCGM_EXPORTER):
        release = charts[ref.chart]
        inputs = release.inputs
        assert inputs["chart"] == ref.chart
        assert inputs["version"] == ref.version
        assert inputs["repositoryOpts"] == {"repo": ref.repo}
        assert inputs["namespace"] == "kube-system"
        assert inputs["atomic"] is True
        values = inputs["values"]
        assert values["tolerations"] == expected_tolerations()
        assert values["affinity"] == expected_affinity
        assert release.parent is not None and release.parent.endswith("GpuDrivers::aks-gpu-drivers")
    assert DEVICE_PLUGIN.version == "0.20.0"
    assert DCGM_EXPORTER.version == "4.8.3"
    assert charts[DCGM_EXPORTER.chart].inputs["values"]["serviceMonitor"] == {"enabled": False}


@MODES
def test_gpu_operator_when_pools_skip_the_aks_driver(preview: bool) -> None:
    run = operator(preview)
    (pool,) = gpu_agent_pools(run).values()
    assert pool.inputs["gpuProfile"] == {"driver": "None"}
    charts = releases(run)
    assert sorted(charts) == [GPU_OPERATOR.chart]
    inputs = charts[GPU_OPERATOR.chart].inputs
    assert (inputs["version"], inputs["repositoryOpts"]) == (GPU_OPERATOR.version, {"repo": GPU_OPERATOR.repo})
    assert GPU_OPERATOR.version == "v26.3.3"
    assert inputs["namespace"] == "gpu-operator"
    assert inputs["createNamespace"] is True
    values = inputs["values"]
    assert values["driver"] == {"enabled": True}
    assert values["daemonsets"]["tolerations"] == expected_tolerations()
    assert values["node-feature-discovery"]["worker"]["tolerations"] == expected_tolerations()


def test_kubeconfig_for_sets_the_login_method() -> None:
    config = {
        "apiVersion": "v1",
        "users": [
            {"name": "u", "user": {"exec": {"command": "kubelogin", "args": ["get-token", "--login", "devicecode"]}}}
        ],
    }
    encoded = base64.b64encode(yaml.safe_dump(config).encode()).decode()
    result = yaml.safe_load(kubeconfig_for(encoded, "workloadidentity"))
    assert result["users"][0]["user"]["exec"]["args"] == ["get-token", "--login", "workloadidentity"]
    with pytest.raises(ValueError, match="not a base64 kubeconfig"):
        kubeconfig_for("not base64!", "azurecli")


@pytest.mark.parametrize("stack", ["prod"])
def test_fqdn_download_rules_get_the_cluster_feature_that_enforces_them(stack: str) -> None:
    """Cilium toFQDNs rules do nothing on AKS without Advanced Container Networking security."""
    from tests.conftest import planned as reference_plan

    run = reference_plan(stack, False).run
    profile = cluster_of(run).inputs["networkProfile"]
    assert profile["networkPolicy"] == "cilium"
    assert profile["advancedNetworking"] == {
        "enabled": True,
        "security": {"enabled": True, "advancedNetworkPolicies": "FQDN"},
    }


@MODES
def test_a_cluster_without_fqdn_rules_leaves_advanced_networking_off(preview: bool) -> None:
    assert "advancedNetworking" not in cluster_of(prod(preview)).inputs["networkProfile"]
