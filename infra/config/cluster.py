"""Where the stack deploys: an existing cluster from a kubeconfig context, or an AKS cluster the stack creates.

``StackConfig.cluster`` is :data:`ClusterConfig` (discriminated on ``mode``). Checks that need the rest of
the stack (environment, Kubernetes version, models) are in :func:`check_cluster`, which StackConfig's
model validator calls; it raises :class:`KeyPathError` with the key path of the offending value.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from infra import gpu
from infra.config.base import ConfigModel, KeyPathError
from infra.config.cost_basis import CostBasis
from infra.config.gpu_sharing import GpuSharing, Mig, NoSharing
from infra.config.k8s_names import LABEL_KEY, refuse
from infra.sizing.slices import NoMigError
from infra.sizing.vm_sizes import GpuVmSize, UnknownVmSizeError, get_vm_size

#: AKS agent pool names: lowercase letters and digits, starting with a letter, at most 12 for Linux pools.
_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
#: AKS cluster names: letters, digits, '-' and '_', starting and ending alphanumeric, at most 63.
_CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,89}[-\w_()]$")
_OPEN_RANGES = frozenset({"0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1", "::/0"})
Zone = Literal["1", "2", "3"]
#: The system pool's taint: only pods that tolerate it (CoreDNS, konnectivity, CSI …) run there.
CRITICAL_ADDONS_TAINT = "CriticalAddonsOnly=true:NoSchedule"


def _all_zones() -> list[Zone]:
    return ["1", "2", "3"]


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value)
    except ValueError as error:
        raise ValueError(f"'{value}' is not a CIDR block (e.g. 10.224.0.0/16)") from error


class ExistingCluster(ConfigModel):
    """An existing cluster, reached through a kubeconfig context; nothing Azure is created."""

    mode: Literal["existing"] = Field("existing", description="`existing`: a cluster from a kubeconfig context.")
    context: str | None = Field(None, description="kubeconfig context; the current context when unset.")
    gpu_node_label: str = Field(
        gpu.POOL_LABEL,
        description="Node label key that puts a GPU node into a pool: a GPU model server selects nodes labelled "
        "`<gpuNodeLabel>=<models[].gpu.pool>` (e.g. `kubernetes.azure.com/agentpool` on an AKS cluster made "
        "elsewhere). Label and taint the nodes as the README's cluster section shows.",
    )

    cost_basis: CostBasis | None = Field(
        None,
        description="Where the cluster's nodes run and which VM sizes they are, for `slm-deploy cost` (the share "
        "of the nodes the stack's pods request); unset: only the requests are shown. See docs/cost.md.",
    )

    @field_validator("gpu_node_label")
    @classmethod
    def _label_key(cls, value: str) -> str:
        return refuse(LABEL_KEY, value, "gpuNodeLabel")

    def gpu_node_selector(self, pool: str) -> dict[str, str]:
        """What a GPU model server on ``pool`` selects."""
        return gpu.node_selector(pool, self.gpu_node_label)


class AksNetwork(ConfigModel):
    """The virtual network of the nodes, and the pod and service ranges (Azure CNI Overlay)."""

    vnet_cidr: str = Field("10.224.0.0/12", description="Address space of the virtual network the stack creates.")
    node_subnet_cidr: str = Field(
        "10.224.0.0/16", description="Subnet of the node VMs (and of internal load balancers); inside `vnetCidr`."
    )
    pod_cidr: str = Field(
        "10.244.0.0/16", description="Overlay range pod IPs come from; must not overlap the virtual network."
    )
    service_cidr: str = Field(
        "10.0.0.0/16", description="Range of ClusterIP services; must not overlap the virtual network or pods."
    )
    dns_service_ip: str = Field("10.0.0.10", description="ClusterIP of CoreDNS; inside `serviceCidr`.")

    @field_validator("vnet_cidr", "node_subnet_cidr", "pod_cidr", "service_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        _network(value)
        return value

    @model_validator(mode="after")
    def _ranges_fit(self) -> AksNetwork:
        vnet, subnet = _network(self.vnet_cidr), _network(self.node_subnet_cidr)
        pods, services = _network(self.pod_cidr), _network(self.service_cidr)
        if subnet.version != vnet.version or not subnet.subnet_of(vnet):  # type: ignore[arg-type]
            raise ValueError(f"nodeSubnetCidr {subnet} is not inside vnetCidr {vnet}")
        for key, block in (("podCidr", pods), ("serviceCidr", services)):
            if block.overlaps(vnet):
                raise ValueError(f"{key} {block} overlaps vnetCidr {vnet}")
        if pods.overlaps(services):
            raise ValueError(f"podCidr {pods} overlaps serviceCidr {services}")
        try:
            dns = ipaddress.ip_address(self.dns_service_ip)
        except ValueError as error:
            raise ValueError(f"dnsServiceIp '{self.dns_service_ip}' is not an IP address") from error
        if dns not in services or dns in (services.network_address, services.broadcast_address):
            raise ValueError(f"dnsServiceIp {dns} is not a host address of serviceCidr {services}")
        return self


class ApiServerAccess(ConfigModel):
    """Who can reach the Kubernetes API server: a private endpoint, or a public one limited to IP ranges."""

    private: bool = Field(
        False, description="Private cluster: the API server has only a private IP in the virtual network."
    )
    authorized_ip_ranges: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach a public API server (your admin network, CI egress). Prod needs "
        "these or `private`.",
    )

    @field_validator("authorized_ip_ranges")
    @classmethod
    def _ranges(cls, value: list[str]) -> list[str]:
        for cidr in value:
            block = _network(cidr)
            if str(block) in _OPEN_RANGES or block.prefixlen == 0:
                raise ValueError(f"'{cidr}' opens the API server to the internet: list your admin networks")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ApiServerAccess:
        if self.private and self.authorized_ip_ranges:
            raise ValueError(
                "authorizedIpRanges do not apply to a private cluster (AKS refuses both): "
                "use private: true, or authorizedIpRanges"
            )
        return self


class _AutoscaledPool(ConfigModel):
    """What every node pool shares: an AKS pool name and autoscaler bounds that make sense."""

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, value: str) -> str:
        return _pool_name(value)

    @model_validator(mode="after")
    def _bounds(self) -> _AutoscaledPool:
        low, high = getattr(self, "min_count"), getattr(self, "max_count")  # noqa: B009 - set by subclasses
        if low > high:
            raise ValueError(f"minCount {low} is above maxCount {high}")
        return self


class SystemPool(_AutoscaledPool):
    """The System node pool: CoreDNS, metrics-server, CSI drivers and other critical add-ons only."""

    name: str = Field("system", description="Agent pool name (lowercase letters and digits, at most 12).")
    vm_size: str = Field("Standard_D4ds_v5", description="VM size of the system nodes.")
    min_count: int = Field(2, ge=1, le=3, description="Fewest system nodes (2 keeps CoreDNS up during upgrades).")
    max_count: int = Field(3, ge=1, le=10, description="Most system nodes the autoscaler may add.")
    only_critical_addons: bool = Field(
        True, description=f"Taint the pool `{CRITICAL_ADDONS_TAINT}` so that workloads never land there."
    )
    zones: list[Zone] = Field(
        default_factory=_all_zones, description="Availability zones the system nodes spread over."
    )
    os_sku: Literal["AzureLinux", "Ubuntu"] = Field("AzureLinux", description="Node OS image.")

    @field_validator("vm_size")
    @classmethod
    def _known_size(cls, value: str) -> str:
        return _known_vm_size(value)


class UserPool(_AutoscaledPool):
    """A CPU node pool for everything that is neither a system add-on nor a GPU model server."""

    name: str = Field("user", description="Agent pool name (lowercase letters and digits, at most 12).")
    vm_size: str = Field("Standard_D4ds_v5", description="VM size of the CPU nodes.")
    min_count: int = Field(1, ge=0, description="Fewest nodes (0 only outside prod).")
    max_count: int = Field(3, ge=1, description="Most nodes the autoscaler may add.")
    zones: list[Zone] = Field(default_factory=_all_zones, description="Availability zones.")
    os_sku: Literal["AzureLinux", "Ubuntu"] = Field("AzureLinux", description="Node OS image.")

    @field_validator("vm_size")
    @classmethod
    def _known_size(cls, value: str) -> str:
        return _known_vm_size(value)


def _known_vm_size(value: str) -> str:
    from infra.config.azure_names import unknown_vm_size

    problem = unknown_vm_size(value)
    if problem:
        raise ValueError(problem)
    return value


def _pool_name(value: str) -> str:
    if not _POOL_NAME.fullmatch(value):
        raise ValueError(
            f"'{value}' is not an AKS agent pool name (lowercase letters and digits, starting with a letter, "
            f"at most 12 characters for Linux pools; got {len(value)})"
        )
    return value


class GpuPool(ConfigModel):
    """One GPU node pool (an AKS User pool), tainted so that only GPU pods land there."""

    name: str = Field(
        description="Agent pool name, also what models name in `gpu.pool` (lowercase letters and digits, at most 12)."
    )
    vm_size: str = Field(description="GPU VM size, e.g. `Standard_NC24ads_A100_v4` (see docs/aks.md for the list).")
    min_count: int = Field(1, ge=0, description="Fewest nodes; 0 (scale to zero) only outside prod.")
    max_count: int = Field(2, ge=1, le=1000, description="Most nodes the cluster autoscaler may add.")
    spot: bool = Field(
        False,
        description="Spot VMs (evicted with 30 s notice; eviction policy Delete, any price up to on-demand); "
        "refused in prod.",
    )
    gpu_driver: Literal["install", "none"] = Field(
        "install",
        description="`install`: AKS installs the NVIDIA driver (the stack adds the device plugin); `none`: AKS "
        "skips it and the stack installs the NVIDIA GPU Operator.",
    )
    zones: list[Zone] = Field(
        default_factory=list, description="Availability zones; empty lets Azure place nodes where the size exists."
    )
    os_sku: Literal["Ubuntu", "AzureLinux"] = Field(
        "Ubuntu", description="Node OS image; Ubuntu has the widest NVIDIA driver and GPU Operator support."
    )
    os_disk_size_gb: int = Field(256, ge=64, description="OS disk size; images of GPU engines are large.")
    sharing: GpuSharing = Field(
        default_factory=NoSharing,
        description="How replicas share the pool's GPUs: `{mode: none}` (whole GPUs), `{mode: timeSlicing, "
        "replicasPerGpu: N}` or `{mode: mig, profile: MIG3g}` (A100/H100). A replica on a shared pool takes one "
        "slice (`gpu.count: 1`); sizing checks the model fits the slice. See docs/shared-gpus.md.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _pool_name(value)

    @field_validator("vm_size")
    @classmethod
    def _known_size(cls, value: str) -> str:
        try:
            return get_vm_size(value).name
        except UnknownVmSizeError as error:
            raise ValueError(str(error).strip("'\"")) from None

    @model_validator(mode="after")
    def _bounds(self) -> GpuPool:
        if self.min_count > self.max_count:
            raise ValueError(f"minCount {self.min_count} is above maxCount {self.max_count}")
        return self

    @property
    def size(self) -> GpuVmSize:
        return get_vm_size(self.vm_size)

    @property
    def taint(self) -> str:
        """The taint every GPU pool carries (the one GPU pods tolerate)."""
        return gpu.pool_taint()

    @property
    def node_labels(self) -> dict[str, str]:
        """The labels model servers select on, and on a shared pool the device plugin config its nodes take."""
        labels = gpu.pool_node_labels(self.name)
        if self.shared:
            labels[gpu.DEVICE_PLUGIN_CONFIG_LABEL] = self.name
        return labels

    @property
    def shared(self) -> bool:
        """Replicas share GPUs (time slices or MIG slices)."""
        return not isinstance(self.sharing, NoSharing)

    @property
    def slices_per_node(self) -> int:
        """Replicas of one GPU each (or of one slice each, on a shared pool) a node holds."""
        return self.size.gpu_count * self.sharing.slices_per_gpu(self.size)

    @property
    def replica_shape(self) -> GpuVmSize:
        """What one GPU of a replica is: a GPU of the VM size, or one slice of it."""
        return self.sharing.shape(self.size)

    @property
    def gpu_resource(self) -> str:
        """The extended resource a model server on this pool requests."""
        return self.sharing.resource(self.size)


class AksCluster(ConfigModel):
    """An AKS cluster the stack creates, hardened by default."""

    mode: Literal["aks"] = Field(description="`aks`: the stack creates the cluster with pulumi-azure-native.")
    name: str = Field(description="Cluster name (also its DNS prefix).")
    resource_group: str = Field(description="Resource group of the cluster and its network.")
    existing_resource_group: bool = Field(
        False, description="Use the resource group `resourceGroup` as it is instead of creating it."
    )
    location: str = Field(min_length=1, description="Azure region, e.g. `westeurope`.")
    kubernetes_version: str = Field(
        description="AKS Kubernetes version (`1.35` or a patch `1.35.2`); its minor must equal the stack's "
        "`kubernetesVersion`.",
        pattern=r"^1\.\d{2}(\.\d+)?$",
    )
    sku_tier: Literal["Free", "Standard", "Premium"] = Field(
        "Standard", description="Control-plane tier; Standard has the uptime SLA (Free is for dev)."
    )
    network: AksNetwork = Field(default_factory=AksNetwork, description="Node network, pod and service ranges.")
    api_server: ApiServerAccess = Field(
        default_factory=ApiServerAccess, description="API server exposure: private, or authorized IP ranges."
    )
    admin_group_object_ids: list[str] = Field(
        default_factory=list,
        description="Entra ID group object ids whose members are cluster admins (Entra ID auth, Azure RBAC).",
    )
    user_assigned_identity_id: str | None = Field(
        None,
        description="Resource id of a user-assigned managed identity for the control plane; a system-assigned "
        "identity when unset.",
    )
    upgrade_channel: Literal["rapid", "stable", "patch", "node-image"] = Field(
        "stable", description="Automatic Kubernetes upgrade channel."
    )
    node_os_upgrade_channel: Literal["NodeImage", "SecurityPatch"] = Field(
        "NodeImage", description="Automatic node OS upgrade channel."
    )
    kubelogin_method: Literal["azurecli", "workloadidentity", "spn", "msi", "devicecode"] = Field(
        "azurecli",
        description="How kubelogin gets Entra tokens for the stack's Kubernetes provider (`--login`); "
        "`workloadidentity` or `spn` in CI.",
    )
    system_pool: SystemPool = Field(default_factory=SystemPool, description="The System node pool.")
    user_pool: UserPool | None = Field(
        default_factory=UserPool,
        description="A CPU pool for monitoring, gateways and operators (the system pool takes critical "
        "add-ons only); `null` to leave it out.",
    )
    gpu_pools: list[GpuPool] = Field(
        default_factory=list,
        description="GPU node pools: one AgentPool each, or one Karpenter NodePool each with `nodeProvisioning: auto`.",
    )
    node_provisioning: Literal["manual", "auto"] = Field(
        "manual",
        description="`manual`: fixed AgentPools scaled by the cluster autoscaler. `auto`: AKS node auto-provisioning "
        "(`nodeProvisioningProfile.mode: Auto`, Karpenter, AKS's own NodePools off): each GPU pool becomes a NodePool "
        "(its VM size, taint and label) with an AKSNodeClass, limited to `maxCount` nodes' GPUs; `minCount` must be "
        "0 and MIG is refused (an agent pool setting); the system and user pools run at their `minCount` (AKS "
        "refuses autoscaled agent pools beside NAP). See docs/node-auto-provisioning.md.",
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Azure tags on every resource the stack creates.")

    @field_validator("name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        if not _CLUSTER_NAME.fullmatch(value):
            raise ValueError(
                f"'{value}' is not an AKS cluster name (letters, digits, '-' and '_', at most 63, starting and "
                "ending with a letter or digit)"
            )
        return value

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        from infra.config.azure_names import unknown_region

        problem = unknown_region(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("resource_group")
    @classmethod
    def _resource_group(cls, value: str) -> str:
        if not _RESOURCE_GROUP.fullmatch(value):
            raise ValueError(f"'{value}' is not a resource group name (at most 90, not ending with '.')")
        return value

    @field_validator("admin_group_object_ids")
    @classmethod
    def _object_ids(cls, value: list[str]) -> list[str]:
        for object_id in value:
            try:
                uuid.UUID(object_id)
            except ValueError as error:
                raise ValueError(f"'{object_id}' is not an Entra object id (a GUID)") from error
        return value

    @model_validator(mode="after")
    def _pools(self) -> AksCluster:
        seen: set[str] = {self.system_pool.name}
        if self.user_pool is not None:
            if self.user_pool.name in seen:
                raise ValueError(f"userPool.name '{self.user_pool.name}' is already the system pool's name")
            seen.add(self.user_pool.name)
        for index, pool in enumerate(self.gpu_pools):
            if pool.name in seen:
                raise ValueError(f"gpuPools[{index}].name '{pool.name}' is already used by another node pool")
            seen.add(pool.name)
        drivers = {pool.gpu_driver for pool in self.gpu_pools}
        if len(drivers) > 1:
            raise ValueError(
                "gpuPools mix gpuDriver 'install' and 'none': the NVIDIA GPU Operator would also manage the pools "
                "whose driver AKS installs; use one gpuDriver for every GPU pool"
            )
        return self

    @property
    def context(self) -> None:
        """No kubeconfig context: the Kubernetes provider is built from the cluster's credentials."""
        return None

    @property
    def gpu_node_label(self) -> str:
        """The node label GPU pools carry (always the stack's own: the pools are created with it)."""
        return gpu.POOL_LABEL

    def gpu_node_selector(self, pool: str) -> dict[str, str]:
        """What a GPU model server on ``pool`` selects (the labels the pool's nodes carry)."""
        return gpu.node_selector(pool, self.gpu_node_label)

    @property
    def uses_gpu_operator(self) -> bool:
        return any(pool.gpu_driver == "none" for pool in self.gpu_pools)

    def pool(self, name: str) -> GpuPool | None:
        return next((pool for pool in self.gpu_pools if pool.name == name), None)


ClusterConfig = Annotated[ExistingCluster | AksCluster, Field(discriminator="mode")]
"""The type of ``StackConfig.cluster``: ``Field(default_factory=ExistingCluster, description=...)``."""


class _ModelGpu(Protocol):
    @property
    def count(self) -> int: ...

    @property
    def pool(self) -> str: ...

    @property
    def vm_size(self) -> str | None: ...


class ModelLike(Protocol):
    """What :func:`check_cluster` reads of a model (``infra.config.stack.ModelConfig`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def gpu(self) -> _ModelGpu: ...

    @property
    def max_replicas(self) -> int: ...


def check_cluster(
    cluster: ExistingCluster | AksCluster,
    *,
    environment: str,
    kubernetes_version: str,
    models: Sequence[ModelLike],
) -> None:
    """Checks across the cluster and the rest of the stack; raises :class:`KeyPathError` at the first problem."""
    if not isinstance(cluster, AksCluster):
        check_models_fit_vm_sizes(models)
        return
    prod = environment == "prod"
    minor = ".".join(cluster.kubernetes_version.split(".")[:2])
    if minor != kubernetes_version:
        raise KeyPathError(
            ("cluster", "kubernetesVersion"),
            f"AKS version {cluster.kubernetes_version} does not match the stack's kubernetesVersion "
            f"{kubernetes_version}: manifests are validated for that version",
        )
    if prod and not cluster.api_server.private and not cluster.api_server.authorized_ip_ranges:
        raise KeyPathError(
            ("cluster", "apiServer"),
            "a prod API server must not be open to the internet: set apiServer.private: true, or "
            "apiServer.authorizedIpRanges to your admin and CI networks",
        )
    auto = cluster.node_provisioning == "auto"
    for index, pool in enumerate(cluster.gpu_pools):
        _check_sharing(pool, ("cluster", "gpuPools", index, "sharing"))
        if auto:
            _check_auto_provisioned(pool, ("cluster", "gpuPools", index))
        if prod and pool.spot:
            raise KeyPathError(
                ("cluster", "gpuPools", index, "spot"),
                f"GPU pool '{pool.name}' uses spot VMs, which prod refuses: Azure may evict them at any time with "
                "30 seconds notice (set spot: false)",
            )
        if prod and pool.min_count == 0 and not auto:
            raise KeyPathError(
                ("cluster", "gpuPools", index, "minCount"),
                f"GPU pool '{pool.name}' may scale to zero, which prod refuses: a new GPU node and model load take "
                "many minutes (set minCount >= 1)",
            )
    if prod and cluster.user_pool is not None and cluster.user_pool.min_count == 0:
        raise KeyPathError(
            ("cluster", "userPool", "minCount"),
            "the user pool may scale to zero, which prod refuses (monitoring and gateways run there)",
        )
    check_models_fit_pools(cluster, models)


def _check_sharing(pool: GpuPool, at: tuple[str | int, ...]) -> None:
    sharing = pool.sharing
    if pool.shared and pool.gpu_driver == "none":
        raise KeyPathError(
            (*at, "mode"),
            f"GPU pool '{pool.name}' shares its GPUs, which needs gpuDriver: install: slm-deploy configures the device "
            "plugin it installs (the GPU Operator's device plugin and MIG manager are configured elsewhere)",
        )
    if not isinstance(sharing, Mig):
        return
    try:
        sharing.slices_per_gpu(pool.size)
    except NoMigError as error:
        raise KeyPathError((*at, "mode"), f"GPU pool '{pool.name}': {error}") from None


def _check_auto_provisioned(pool: GpuPool, at: tuple[str | int, ...]) -> None:
    if isinstance(pool.sharing, Mig):
        raise KeyPathError(
            (*at, "sharing", "mode"),
            f"GPU pool '{pool.name}' is auto-provisioned (nodeProvisioning: auto), but MIG slices come from an agent "
            "pool's gpuInstanceProfile: use nodeProvisioning: manual for MIG pools, or timeSlicing",
        )
    if pool.min_count != 0:
        raise KeyPathError(
            (*at, "minCount"),
            f"GPU pool '{pool.name}' is auto-provisioned (nodeProvisioning: auto): Karpenter keeps no idle nodes, it "
            "adds them while pods wait (a model's replicas hold its nodes); set minCount: 0",
        )


def check_models_fit_vm_sizes(models: Sequence[ModelLike]) -> None:
    """On an existing cluster: a GPU model that names its VM size (``gpu.vmSize``) asks for no more GPUs than one
    VM of that size has (a pod is placed on one node: it would stay Pending for ever)."""
    for index, model in enumerate(models):
        if model.gpu.count == 0 or model.gpu.vm_size is None:
            continue
        try:
            size = get_vm_size(model.gpu.vm_size)
        except UnknownVmSizeError as error:
            raise KeyPathError(
                ("models", index, "gpu", "vmSize"),
                f"{error}: the GPU count of model '{model.name}' is checked against it",
            ) from None
        if model.gpu.count > size.gpu_count:
            raise KeyPathError(
                ("models", index, "gpu", "count"),
                f"model '{model.name}' asks for {model.gpu.count} GPUs per replica, but gpu.vmSize {size.name} has "
                f"{size.gpu_count} {size.gpu} per node ({size.gpu_memory_gb:g} GB each): a replica never schedules; "
                "use a larger VM size or fewer GPUs",
            )


def check_models_fit_pools(cluster: AksCluster, models: Sequence[ModelLike]) -> None:
    """Every GPU model names a pool whose VM size has enough GPUs, and the pool can grow to all its replicas."""
    demand: dict[str, list[tuple[int, int]]] = {}
    for index, model in enumerate(models):
        if model.gpu.count == 0:
            continue
        pool = cluster.pool(model.gpu.pool)
        if pool is None:
            known = ", ".join(p.name for p in cluster.gpu_pools) or "none"
            raise KeyPathError(
                ("models", index, "gpu", "pool"),
                f"model '{model.name}' asks for GPU pool '{model.gpu.pool}', which is not under cluster.gpuPools "
                f"(known: {known})",
            )
        size = pool.size
        if pool.shared and model.gpu.count != 1:
            raise KeyPathError(
                ("models", index, "gpu", "count"),
                f"model '{model.name}' asks for {model.gpu.count} GPUs per replica, but pool '{pool.name}' shares its "
                f"GPUs ({pool.sharing.mode}): a replica takes one slice (gpu.count: 1); slices cannot be joined for "
                "tensor parallelism",
            )
        if model.gpu.count > size.gpu_count:
            raise KeyPathError(
                ("models", index, "gpu", "count"),
                f"model '{model.name}' asks for {model.gpu.count} GPUs per replica, but pool '{pool.name}' "
                f"({size.name}) has {size.gpu_count} {size.gpu} per node ({size.gpu_memory_gb:g} GB each): use a "
                "larger VM size or fewer GPUs",
            )
        demand.setdefault(pool.name, []).append((index, model.max_replicas * model.gpu.count))
    for pool_name, wanted in demand.items():
        pool = cluster.pool(pool_name)
        assert pool is not None
        capacity = pool.max_count * pool.slices_per_node
        total = sum(gpus for _, gpus in wanted)
        if total > capacity:
            index = wanted[-1][0]
            names = ", ".join(f"'{models[i].name}'" for i, _ in wanted)
            unit = "slices" if pool.shared else "GPUs"
            raise KeyPathError(
                ("models", index, "gpu", "count"),
                f"models {names} need up to {total} {unit} at their maximum replicas, but pool '{pool.name}' holds at "
                f"most {capacity} ({pool.max_count} nodes x {pool.slices_per_node} {unit} of {pool.size.name}): "
                "raise the pool's maxCount or lower the replicas",
            )
