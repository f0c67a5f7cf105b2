"""One model behind an OpenAI-compatible API: namespace, identity, cache, server, service, budget, policies.

The modules of this package are the model server's own child components (secrets, API keys, preparation
Job, network policies, autoscaler); nothing outside the package builds them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import (
    DeploymentSpecArgs,
    DeploymentStrategyArgs,
    RollingUpdateDeploymentArgs,
)
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    HTTPGetActionArgs,
    ImageVolumeSourceArgs,
    PersistentVolumeClaimSpecArgs,
    PersistentVolumeClaimVolumeSourceArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    TolerationArgs,
    TopologySpreadConstraintArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeResourceRequirementsArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.policy.v1 import PodDisruptionBudgetSpecArgs

from infra import gpu
from infra.components.labels import ModelLabels, endpoint_picker_selector
from infra.components.model_server.api_keys import ApiKeyWiring, ModelApiKeys, ModelApiKeysArgs
from infra.components.model_server.autoscaler import ModelAutoscaler, ModelAutoscalerArgs, WakeOnRequest
from infra.components.model_server.network_policy import ModelNetworkPolicy, ModelNetworkPolicyArgs
from infra.components.model_server.preparation import ModelPreparation, ModelPreparationArgs
from infra.components.model_server.secrets import ModelSecrets, ModelSecretsArgs, SecretWiring
from infra.components.model_server.vpa import ModelVpa, ModelVpaArgs
from infra.components.pod_security import (
    container_security_context,
    pod_security_context,
    restricted_namespace,
    step_container,
)
from infra.config import priority
from infra.config.http_add_on import INTERCEPTOR_POD_LABELS, interceptor_host
from infra.config.model import ModelConfig
from infra.config.network import NetworkConfig
from infra.config.objects import CACHE_SUFFIX, ENGINE_CONFIG_SUFFIX
from infra.config.quantity import ephemeral_storage
from infra.config.secret_store import SecretStoreConfig
from infra.config.versions import Track, workload_name
from infra.engines.base import EngineSpec
from policies.lib.k8s import UNAUTHENTICATED_REASON

#: checkov skip annotation of a server that reads its API key from an environment variable (see the Deployment).
CHECKOV_SKIP_KEY_ENV = "checkov.io/skip-api-key-env"
KEY_ENV_REASON = "the engine reads its API key only from this variable or its command line; set from a Secret"

CACHE_VOLUME = "model-cache"
EPHEMERAL_STORAGE = "ephemeral-storage"
ENGINE_CONFIG_VOLUME = "engine-config"


@dataclass(frozen=True)
class ServedVersion:
    """One revision of a canary rollout as the server runs it (``models[].versions``)."""

    #: The revision's name (``None``: the model without versions, whose objects are named after the model).
    name: str | None
    track: Track | None
    #: The model with the revision's keys, and its engine.
    model: ModelConfig
    engine: EngineSpec
    #: Percent of the model's requests.
    weight: int
    #: The revision loads other weights than the stable one: its own ``<model>-<version>-cache``.
    own_cache: bool = False


@dataclass(frozen=True)
class VersionObjects:
    """What one revision runs: its Deployment, Service and budget, its engine ConfigMap and the cache it mounts."""

    served: ServedVersion
    #: None when the weights come in an image volume.
    cache: k8s.core.v1.PersistentVolumeClaim | None
    engine_config: k8s.core.v1.ConfigMap | None
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    disruption_budget: k8s.policy.v1.PodDisruptionBudget


@dataclass
class ModelServerArgs:
    model: ModelConfig
    engine: EngineSpec
    #: Who may call the server and where it may connect (the stack's ``network``).
    network: NetworkConfig
    #: Namespace of the Prometheus that scrapes the server.
    monitoring_namespace: str
    #: Where secret values live (the stack's ``secretStore``).
    secret_store: SecretStoreConfig
    #: Protect the model cache from deletion.
    protect: bool = False
    #: The stack's labels, on every object (and as tags on Azure objects).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: The entry point's proxies (namespace, pod labels) when they route to this model.
    gateway_peer: tuple[str, dict[str, str]] | None = None
    #: Secret values by config name (Pulumi secret outputs); only those the model references are used.
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    #: Where KEDA queries the queue metric.
    prometheus_url: str = ""
    #: The cluster's OIDC issuer, for workload identity (azure-keyvault secrets).
    oidc_issuer: pulumi.Input[str] | None = None
    #: The node label key a GPU server selects its pool by (``cluster.gpuNodeLabel``; the AKS pools' label).
    gpu_node_label: str = gpu.POOL_LABEL
    #: The extended resource a replica requests: a whole GPU, or a slice of a shared pool's GPU
    #: (``StackConfig.gpu_resource``: ``nvidia.com/gpu.shared``, ``nvidia.com/mig-3g.40gb`` …).
    gpu_resource: str = gpu.NVIDIA_GPU
    #: The stack's API keys (the secret's value) when the server must check them too (its own key derived from
    #: them, for a one-key engine); ignored when the engine cannot check keys.
    api_keys: pulumi.Input[str] | None = None
    #: Instead of ``api_keys``: the name of a Secret in the model's namespace, managed outside the stack.
    existing_api_key_secret: str | None = None
    #: KEDA's namespace, where the HTTP add-on's interceptor and external scaler run (models that scale to zero).
    keda_namespace: str = "keda"
    #: The revisions of a canary rollout (stable first); empty: the model alone, its objects named after it.
    versions: Sequence[ServedVersion] = ()


class ModelServer(pulumi.ComponentResource):
    """Serves one model. Children are exposed as attributes as an escape hatch."""

    namespace: k8s.core.v1.Namespace
    service_account: k8s.core.v1.ServiceAccount
    #: None when the weights come in an image volume (nothing is downloaded, nothing kept).
    cache: k8s.core.v1.PersistentVolumeClaim | None
    #: None when the model reads no secret.
    secrets: ModelSecrets | None
    #: None when the server checks no API key.
    api_keys: ModelApiKeys | None
    engine_config: k8s.core.v1.ConfigMap | None
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    disruption_budget: k8s.policy.v1.PodDisruptionBudget
    network_policy: ModelNetworkPolicy
    preparation: ModelPreparation | None
    autoscaler: ModelAutoscaler | None
    #: None unless `vpa.enabled`.
    vpa: ModelVpa | None
    #: Each revision's objects (one, the model's own, without ``versions``); ``deployment``, ``service`` … are the
    #: first's (the stable revision's).
    versions: list[VersionObjects]

    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:serving:ModelServer", name, None, opts)
        model, engine = args.model, args.engine
        labels = ModelLabels(
            app_name=engine.app_name,
            instance=model.name,
            version=engine.image.tag,
            extra=tuple(sorted({**args.labels, **model.labels}.items())),
        )
        self.labels = labels
        child = pulumi.ResourceOptions(parent=self)
        ns_name = model.k8s_namespace

        self.namespace = restricted_namespace(f"{name}-namespace", ns_name, labels.all, opts=child)
        # Everything below lives in the namespace: create it first.
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        # Components pass the namespace on as an output, which carries the dependency to their children.
        # (Attribute lifting runs during preview too, while the namespace's uid is still unknown.)
        namespace_ref: pulumi.Output[str] = self.namespace.metadata.name

        prepare = engine.preparation
        # The preparation Job (when there is one) downloads with the token even if the server does not.
        secret_env = _secret_env(
            engine.hf_token_env or (prepare.hf_token_env if prepare else None), model.hf_token_secret
        )
        secret_file_env = _secret_env(
            engine.hf_token_path_env or (prepare.hf_token_path_env if prepare else None), model.hf_token_secret
        )
        # A model that reads no secret gets no (empty) secrets component.
        self.secrets = None
        job_wiring = SecretWiring()
        if secret_env or secret_file_env:
            self.secrets = ModelSecrets(
                f"{name}-secrets",
                ModelSecretsArgs(
                    model=model.name,
                    namespace=namespace_ref,
                    service_account=model.name,
                    env=secret_env,
                    file_env=secret_file_env,
                    values=args.secrets,
                    store=args.secret_store,
                    oidc_issuer=args.oidc_issuer,
                    labels=labels.all,
                    tags=dict(args.labels),
                ),
                opts=in_ns,
            )
            job_wiring = self.secrets.wiring
        # The server receives secrets only if its engine reads them.
        wiring = job_wiring if engine.hf_token_env or engine.hf_token_path_env else SecretWiring()
        wiring.pod_labels = job_wiring.pod_labels
        wiring.service_account_annotations = job_wiring.service_account_annotations
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=ObjectMetaArgs(
                name=model.name,
                namespace=ns_name,
                labels=labels.all,
                annotations=wiring.service_account_annotations or None,
            ),
            automount_service_account_token=model.hardening.automount_service_account_token,
            opts=in_ns,
        )
        self.cache = (
            self._cache(f"{name}-cache", f"{model.name}{CACHE_SUFFIX}", model, labels.all, args.protect, in_ns)
            if model.has_cache_volume
            else None
        )
        self.api_keys = None
        key_check = engine.api_key_file or engine.server_key_env
        if key_check is not None and (args.api_keys is not None or args.existing_api_key_secret):
            self.api_keys = ModelApiKeys(
                f"{name}-api-keys",
                ModelApiKeysArgs(
                    model=model.name,
                    namespace=namespace_ref,
                    check=key_check,
                    keys=args.api_keys,
                    existing_secret=None if args.api_keys is not None else args.existing_api_key_secret,
                    labels=labels.all,
                ),
                opts=in_ns,
            )
        self.preparation = None
        if prepare is not None:
            self.preparation = ModelPreparation(
                f"{name}-prepare",
                ModelPreparationArgs(
                    model=model.name,
                    preparation=prepare,
                    namespace=namespace_ref,
                    service_account=model.name,
                    claim_name=f"{model.name}{CACHE_SUFFIX}",
                    resources=_resources(model, ephemeral_storage([prepare.scratch_size_limit]), with_gpu=False),
                    wiring=job_wiring,
                    hardening=model.hardening,
                    labels={k: v for k, v in labels.all.items() if k != "app.kubernetes.io/name"},
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*([self.cache] if self.cache else []), self.service_account]
                ),
            )
        self.versions = [
            self._serve(name, served, args, labels, wiring, in_ns)
            for served in (args.versions or [ServedVersion(None, None, model, engine, 100)])
        ]
        first = self.versions[0]
        self.engine_config = first.engine_config
        self.deployment, self.service, self.disruption_budget = first.deployment, first.service, first.disruption_budget
        scale_to_zero = model.scales_to_zero
        self.network_policy = ModelNetworkPolicy(
            f"{name}-network",
            ModelNetworkPolicyArgs(
                namespace=namespace_ref,
                pod_selector=labels.model_selector,
                # Every pod of the model (the server and its preparation Job) may resolve names and download.
                egress_selector={"app.kubernetes.io/instance": model.name},
                labels=labels.all,
                serving_port=engine.port,
                metrics_port=engine.metrics_port,
                network=args.network,
                monitoring_namespace=args.monitoring_namespace,
                gateway_peer=args.gateway_peer,
                downloads=model.has_cache_volume,
                endpoint_picker=(ns_name, endpoint_picker_selector(model.name))
                if model.inference_pool.enabled
                else None,
                interceptor_peer=(args.keda_namespace, dict(INTERCEPTOR_POD_LABELS)) if scale_to_zero else None,
            ),
            opts=in_ns,
        )
        self.autoscaler = None
        if model.autoscaling.enabled:
            self.autoscaler = ModelAutoscaler(
                f"{name}-autoscaler",
                ModelAutoscalerArgs(
                    deployment=model.name,
                    namespace=namespace_ref,
                    namespace_name=ns_name,
                    served_model_name=model.api_model_name,
                    scaling=model.autoscaling,
                    prometheus_url=args.prometheus_url,
                    labels=labels.all,
                    queue_metric=engine.queue_metric if engine.metrics_path is not None else None,
                    model_label=engine.metrics_model_label,
                    wake=WakeOnRequest(
                        service=model.name,
                        port=engine.port,
                        host=interceptor_host(model.name, ns_name),
                        path_prefix=engine.api_base_path,
                        keda_namespace=args.keda_namespace,
                        wake_timeout_seconds=model.wake_timeout_seconds,
                    )
                    if scale_to_zero
                    else None,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
            )
        self.vpa = None
        if model.vpa.enabled:
            self.vpa = ModelVpa(
                f"{name}-vpa",
                ModelVpaArgs(
                    deployment=model.name,
                    container=engine.container_name,
                    namespace=namespace_ref,
                    settings=model.vpa,
                    labels=labels.all,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
            )
        self.register_outputs(
            {
                "namespace": ns_name,
                "service": self.service.metadata.name,
                "url": f"http://{workload_name(model.name, first.served.name)}.{ns_name}.svc.cluster.local:"
                f"{engine.port}{engine.api_base_path}",
            }
        )

    def _cache(
        self,
        resource: str,
        claim: str,
        model: ModelConfig,
        labels: Mapping[str, str],
        protect: bool,
        opts: pulumi.ResourceOptions,
    ) -> k8s.core.v1.PersistentVolumeClaim:
        return k8s.core.v1.PersistentVolumeClaim(
            resource,
            metadata=ObjectMetaArgs(name=claim, namespace=model.k8s_namespace, labels=dict(labels)),
            spec=PersistentVolumeClaimSpecArgs(
                access_modes=[model.cache.access_mode],
                storage_class_name=model.cache.storage_class,
                resources=VolumeResourceRequirementsArgs(requests={"storage": model.cache.size}),
            ),
            # Weights take long to fetch: a prod stack never deletes its cache by accident.
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
        )

    def _serve(
        self,
        name: str,
        served: ServedVersion,
        args: ModelServerArgs,
        base: ModelLabels,
        wiring: SecretWiring,
        in_ns: pulumi.ResourceOptions,
    ) -> VersionObjects:
        """One revision's Deployment, Service, budget, engine ConfigMap (and cache when it loads other weights)."""
        model, engine = served.model, served.engine
        labels = dataclasses.replace(base, version=engine.image.tag, revision=served.name, track=served.track)
        workload = workload_name(model.name, served.name)
        prefix = name if served.name is None else f"{name}-{served.name}"
        ns_name = model.k8s_namespace

        def meta(object_name: str) -> ObjectMetaArgs:
            return ObjectMetaArgs(name=object_name, namespace=ns_name, labels=labels.all)

        cache, claim = self.cache, f"{model.name}{CACHE_SUFFIX}"
        if served.own_cache:
            claim = f"{workload}{CACHE_SUFFIX}"
            cache = self._cache(f"{prefix}-cache", claim, model, labels.all, args.protect, in_ns)
        engine_config = None
        if engine.config_files:
            engine_config = k8s.core.v1.ConfigMap(
                f"{prefix}-engine-config",
                metadata=meta(f"{workload}{ENGINE_CONFIG_SUFFIX}"),
                data=dict(engine.config_files),
                opts=in_ns,
            )
        env = [EnvVarArgs(name=key, value=value) for key, value in sorted(engine.env.items())] + wiring.env
        # One expression, so that no option (a dependency above all) can be dropped by a later branch.
        deployment_opts = pulumi.ResourceOptions(
            parent=self,
            # The server starts on a prepared model: Pulumi waits for the Job to complete first.
            depends_on=[self.namespace, *([self.preparation.job] if self.preparation is not None else [])],
            # With an autoscaler, spec.replicas is only the starting count: the autoscaler owns it afterwards.
            ignore_changes=["spec.replicas"] if model.autoscaling.enabled else None,
        )
        reason = args.model.direct_access.unauthenticated_reason
        annotations = {UNAUTHENTICATED_REASON: reason} if reason is not None else {}
        if self.api_keys is not None and engine.api_key_file is None and engine.server_key_env is not None:
            # checkov's CKV_K8S_35 prefers Secrets as files; vLLM reads its key from VLLM_API_KEY or its command
            # line only (a --config file is refused by the gate), so the variable, set by reference to the
            # Secret, is the safer of the two. A key of its own (not the waivers' checkov.io/skip<N>).
            annotations[CHECKOV_SKIP_KEY_ENV] = f"CKV_K8S_35={KEY_ENV_REASON}"
        deployment = k8s.apps.v1.Deployment(
            f"{prefix}-deployment",
            metadata=ObjectMetaArgs(
                name=workload,
                namespace=ns_name,
                labels=labels.all,
                # Shown to reviewers and read by the policy pack (model-servers-check-keys).
                annotations=annotations or None,
            ),
            spec=DeploymentSpecArgs(
                # With an autoscaler, this is only the starting count (spec.replicas is in ignore_changes).
                replicas=model.autoscaling.min_replicas if model.autoscaling.enabled else model.replicas,
                selector=LabelSelectorArgs(match_labels=labels.selector),
                strategy=_strategy(model),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels={**labels.all, **wiring.pod_labels}),
                    spec=_pod_spec(
                        model,
                        engine,
                        labels,
                        env,
                        wiring,
                        args.gpu_node_label,
                        self.api_keys.wiring if self.api_keys is not None else None,
                        claim=claim,
                        engine_config=f"{workload}{ENGINE_CONFIG_SUFFIX}",
                        gpu_resource=args.gpu_resource,
                    ),
                ),
            ),
            opts=deployment_opts,
        )
        service = k8s.core.v1.Service(
            f"{prefix}-service",
            metadata=meta(workload),
            spec=ServiceSpecArgs(type="ClusterIP", selector=labels.selector, ports=_service_ports(engine)),
            opts=in_ns,
        )
        budget = k8s.policy.v1.PodDisruptionBudget(
            f"{prefix}-pdb",
            metadata=meta(workload),
            # maxUnavailable, not minAvailable: a single replica must not block node drains forever.
            spec=PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=LabelSelectorArgs(match_labels=labels.selector)
            ),
            opts=in_ns,
        )
        return VersionObjects(served, cache, engine_config, deployment, service, budget)


def _strategy(model: ModelConfig) -> DeploymentStrategyArgs:
    """Bring a new replica up before an old one goes (model start-up takes minutes), where the cache allows.

    A ReadWriteOnce cache attaches to one node: a surge pod scheduled elsewhere would wait for the volume
    (multi-attach error) while the old pod holds it, and the rollout would never finish. Such a model is
    replaced instead: the old pod stops, then the new one starts on the volume.
    """
    if model.has_cache_volume and model.cache.access_mode != "ReadWriteMany":
        return DeploymentStrategyArgs(type="Recreate")
    return DeploymentStrategyArgs(
        type="RollingUpdate", rolling_update=RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0)
    )


def _service_ports(engine: EngineSpec) -> list[ServicePortArgs]:
    ports = [ServicePortArgs(name=engine.port_name, port=engine.port, target_port=engine.port_name, protocol="TCP")]
    if engine.metrics_port is not None and engine.metrics_port != engine.port:
        ports.append(ServicePortArgs(name="metrics", port=engine.metrics_port, target_port="metrics", protocol="TCP"))
    return ports


def _resources(
    model: ModelConfig, disk: str, with_gpu: bool = True, gpu_resource: str = gpu.NVIDIA_GPU
) -> ResourceRequirementsArgs:
    """The model's CPU and memory, its GPUs (``gpu.count`` of ``gpu_resource``: whole GPUs or slices of a shared
    pool's), and ``disk`` (:func:`ephemeral_storage`) as ephemeral-storage.

    Request and limit of ephemeral-storage are equal: the scheduler reserves all the disk the emptyDirs may fill,
    so a node's disk is never overcommitted under a model server (the pod is evicted beyond it).
    """
    resources = model.resources.as_kubernetes()
    requests, limits = resources["requests"], resources["limits"]
    requests[EPHEMERAL_STORAGE] = limits[EPHEMERAL_STORAGE] = disk
    if model.gpu.count and with_gpu:
        # Extended resources cannot be overcommitted: request and limit are equal.
        requests[gpu_resource] = str(model.gpu.count)
        limits[gpu_resource] = str(model.gpu.count)
    return ResourceRequirementsArgs(requests=requests, limits=limits)


def _probes(model: ModelConfig, engine: EngineSpec) -> dict[str, ProbeArgs]:
    http = HTTPGetActionArgs(path=engine.health_path, port=engine.port_name)
    period = 10
    return {
        # Download and load may take many minutes; liveness only starts once this succeeds.
        "startup": ProbeArgs(
            http_get=http,
            period_seconds=period,
            timeout_seconds=5,
            failure_threshold=math.ceil(model.startup_timeout_seconds / period),
        ),
        "readiness": ProbeArgs(http_get=http, period_seconds=period, timeout_seconds=5, failure_threshold=3),
        "liveness": ProbeArgs(http_get=http, period_seconds=15, timeout_seconds=5, failure_threshold=4),
    }


#: The cache mount of a model whose weights come in an image volume: a scratch directory (HF_HOME of an offline
#: server), since nothing is downloaded.
SCRATCH_CACHE_SIZE = "1Gi"


def _cache_volume(model: ModelConfig, claim: str) -> VolumeArgs:
    if model.has_cache_volume:
        return VolumeArgs(
            name=CACHE_VOLUME, persistent_volume_claim=PersistentVolumeClaimVolumeSourceArgs(claim_name=claim)
        )
    return VolumeArgs(name=CACHE_VOLUME, empty_dir=EmptyDirVolumeSourceArgs(size_limit=SCRATCH_CACHE_SIZE))


def _secret_env(variable: str | None, secret: str | None) -> dict[str, str]:
    return {variable: secret} if variable and secret else {}


def _pod_spec(
    model: ModelConfig,
    engine: EngineSpec,
    labels: ModelLabels,
    env: list[EnvVarArgs],
    wiring: SecretWiring,
    gpu_node_label: str = gpu.POOL_LABEL,
    api_keys: ApiKeyWiring | None = None,
    claim: str = "",
    engine_config: str = "",
    gpu_resource: str = gpu.NVIDIA_GPU,
) -> PodSpecArgs:
    """The server's pod; ``claim`` and ``engine_config`` name its cache and engine ConfigMap (the model's if unset)."""
    hardening = model.hardening
    volumes = [_cache_volume(model, claim or f"{model.name}{CACHE_SUFFIX}")]
    mounts = [VolumeMountArgs(name=CACHE_VOLUME, mount_path=engine.cache_mount_path)]
    for image in engine.image_volumes:
        # Image volumes are read-only whatever the mount says; saying it keeps scanners and readers sure.
        source = ImageVolumeSourceArgs(reference=image.reference, pull_policy=image.pull_policy)
        volumes.append(VolumeArgs(name=image.name, image=source))
        mounts.append(VolumeMountArgs(name=image.name, mount_path=image.mount_path, read_only=True))
    for path in engine.writable_paths:
        volumes.append(
            VolumeArgs(
                name=path.name,
                empty_dir=EmptyDirVolumeSourceArgs(medium=path.medium, size_limit=path.size_limit),
            )
        )
        mounts.append(VolumeMountArgs(name=path.name, mount_path=path.mount_path))
    volumes += wiring.volumes
    mounts += wiring.volume_mounts
    if engine.config_files:
        volumes.append(
            VolumeArgs(
                name=ENGINE_CONFIG_VOLUME,
                config_map=ConfigMapVolumeSourceArgs(
                    name=engine_config or f"{model.name}{ENGINE_CONFIG_SUFFIX}", default_mode=0o444
                ),
            )
        )
        mounts.append(VolumeMountArgs(name=ENGINE_CONFIG_VOLUME, mount_path=engine.config_mount_path, read_only=True))
    ports = [ContainerPortArgs(name=engine.port_name, container_port=engine.port, protocol="TCP")]
    if engine.metrics_port is not None and engine.metrics_port != engine.port:
        ports.append(ContainerPortArgs(name="metrics", container_port=engine.metrics_port, protocol="TCP"))
    probes = _probes(model, engine)
    scratch = [] if model.has_cache_volume else [SCRATCH_CACHE_SIZE]
    disk = ephemeral_storage([*engine.disk_size_limits, *scratch])
    # The API keys go to the server's container alone: preparation steps serve no request.
    server_args, server_env, server_mounts = list(engine.args), env, mounts
    if api_keys is not None:
        server_args += api_keys.args
        server_env = [*env, *api_keys.env]
        if api_keys.volume is not None and api_keys.volume_mount is not None:
            volumes.append(api_keys.volume)
            server_mounts = [*mounts, api_keys.volume_mount]
    container = ContainerArgs(
        name=engine.container_name,
        image=engine.image.reference,
        image_pull_policy="IfNotPresent",
        command=engine.command or None,
        args=server_args or None,
        env=server_env,
        ports=ports,
        resources=_resources(model, disk, gpu_resource=gpu_resource),
        security_context=container_security_context(hardening),
        startup_probe=probes["startup"],
        readiness_probe=probes["readiness"],
        liveness_probe=probes["liveness"],
        volume_mounts=server_mounts,
    )
    # Preparing needs no GPU: CPU, memory and disk as the server, nothing more.
    init_containers = [
        step_container(step, engine.image.reference, env, _resources(model, disk, with_gpu=False), hardening, mounts)
        for step in engine.prepare
    ]
    on_gpu = model.gpu.count > 0
    return PodSpecArgs(
        init_containers=init_containers or None,
        service_account_name=model.name,
        automount_service_account_token=hardening.automount_service_account_token,
        # Service environment variables leak the names and addresses of everything in the namespace.
        enable_service_links=False,
        security_context=pod_security_context(hardening),
        containers=[container],
        volumes=volumes,
        node_selector=gpu.node_selector(model.gpu.pool, gpu_node_label) if on_gpu else None,
        tolerations=[
            TolerationArgs(key=t.key, operator=t.operator, value=t.value, effect=t.effect) for t in gpu.tolerations()
        ]
        if on_gpu
        else None,
        topology_spread_constraints=[
            TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key=key,
                # Prefer spreading; a single-zone dev cluster must still schedule.
                when_unsatisfiable="ScheduleAnyway",
                label_selector=LabelSelectorArgs(match_labels=labels.selector),
            )
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
        termination_grace_period_seconds=120,
        priority_class_name=priority.SERVING.name,
    )
