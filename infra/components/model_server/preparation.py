"""A Job that readies a model in the cache volume before the server starts.

What the Job runs (download, conversion) is the engine's: :class:`infra.engines.base.Preparation`.
This component runs it hardened like the server, with the model's secret wiring, and keeps the Job
(not garbage-collected) so that Pulumi sees it stay complete; the server's Deployment depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.batch.v1 import JobSpecArgs
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    PersistentVolumeClaimVolumeSourceArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ResourceRequirementsArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.components.model_server.secrets import SecretWiring
from infra.components.pod_security import pod_security_context, step_container
from infra.config import priority
from infra.config.objects import PREPARE_SUFFIX
from infra.engines.base import Preparation, PrepareStep
from infra.hardening import Hardening

#: Preparation pods carry the model's instance label (so its egress policies apply) but not the server's
#: name label, so the model's Service never routes to them.
APP_NAME = "model-preparation"


@dataclass
class ModelPreparationArgs:
    #: Names the Job (``<model>-prepare``).
    model: str
    preparation: Preparation
    namespace: pulumi.Input[str]
    service_account: str
    claim_name: str
    #: Conversion holds the model in memory: the server's CPU and memory, ephemeral-storage for the scratch space.
    resources: ResourceRequirementsArgs
    #: How the pod receives secrets (the Hugging Face token for gated models).
    wiring: SecretWiring
    hardening: Hardening
    labels: dict[str, str] = field(default_factory=dict)


class ModelPreparation(pulumi.ComponentResource):
    """Run the engine's preparation steps once, in a Job."""

    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: ModelPreparationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:serving:ModelPreparation", name, None, opts)
        preparation = args.preparation
        env = [EnvVarArgs(name=key, value=value) for key, value in preparation.env.items()] + args.wiring.env
        mounts = [
            VolumeMountArgs(name="model-cache", mount_path=preparation.cache_mount_path),
            VolumeMountArgs(name="tmp", mount_path="/tmp"),
            *args.wiring.volume_mounts,
        ]

        def container(step: PrepareStep) -> ContainerArgs:
            return step_container(step, preparation.image.reference, env, args.resources, args.hardening, mounts)

        *first_steps, last_step = preparation.steps
        labels = {**args.labels, "app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/component": APP_NAME}
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=ObjectMetaArgs(name=f"{args.model}{PREPARE_SUFFIX}", namespace=args.namespace, labels=labels),
            spec=JobSpecArgs(
                backoff_limit=2,
                active_deadline_seconds=3600,
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels={**labels, **args.wiring.pod_labels}),
                    spec=PodSpecArgs(
                        restart_policy="Never",
                        # Queued ahead of default-priority pods, never evicting any (infra/config/priority.py).
                        priority_class_name=priority.BATCH.name,
                        service_account_name=args.service_account,
                        automount_service_account_token=args.hardening.automount_service_account_token,
                        enable_service_links=False,
                        security_context=pod_security_context(args.hardening),
                        init_containers=[container(step) for step in first_steps] or None,
                        containers=[container(last_step)],
                        volumes=[
                            VolumeArgs(
                                name="model-cache",
                                persistent_volume_claim=PersistentVolumeClaimVolumeSourceArgs(
                                    claim_name=args.claim_name
                                ),
                            ),
                            VolumeArgs(
                                name="tmp",
                                empty_dir=EmptyDirVolumeSourceArgs(size_limit=preparation.scratch_size_limit),
                            ),
                            *args.wiring.volumes,
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"job": f"{args.model}{PREPARE_SUFFIX}"})
