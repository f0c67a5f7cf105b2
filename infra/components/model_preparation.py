"""A Job that readies an ONNX Runtime GenAI model in the cache volume before the server starts.

It downloads the Hugging Face repository, then converts it with the onnxruntime-genai model builder
(``python -m slm_onnx_server.prepare``, which skips a model already converted, and uses a repository
already in ORT GenAI format as it is). Both steps are idempotent: re-running the Job costs a check.
The server's Deployment depends on the Job, and Pulumi waits for a Job to complete.
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

from infra.components.secrets import SecretWiring
from infra.config.stack import ModelConfig, OnnxPrepare
from infra.hardening import Hardening

CACHE = "/models"
#: Preparation pods carry the model's instance label (so its egress policies apply) but not the server's
#: name label, so the model's Service never routes to them.
APP_NAME = "model-preparation"

_DOWNLOAD = """set -eu
if [ -f "$SLM_OUTPUT/genai_config.json" ]; then echo "already prepared: $SLM_OUTPUT"; exit 0; fi
python -c 'import os, huggingface_hub as hub; hub.snapshot_download(os.environ["SLM_SOURCE"],
    local_dir=os.environ["SLM_DOWNLOAD"])'
"""


@dataclass
class ModelPreparationArgs:
    model: ModelConfig
    prepare: OnnxPrepare
    namespace: pulumi.Input[str]
    service_account: str
    claim_name: str
    output_path: str
    #: How the pod receives secrets (the Hugging Face token for gated models).
    wiring: SecretWiring
    hardening: Hardening
    labels: dict[str, str] = field(default_factory=dict)


class ModelPreparation(pulumi.ComponentResource):
    """Download and convert once; the Job is kept (not garbage-collected) so Pulumi sees it stay complete."""

    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: ModelPreparationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:serving:ModelPreparation", name, None, opts)
        from infra.components.model_server import container_security_context, pod_security_context

        prepare, model = args.prepare, args.model
        download_dir = f"{CACHE}/hf-source/{model.name}"
        env = [
            EnvVarArgs(name="SLM_SOURCE", value=prepare.source),
            EnvVarArgs(name="SLM_DOWNLOAD", value=download_dir),
            EnvVarArgs(name="SLM_OUTPUT", value=args.output_path),
            EnvVarArgs(name="HF_HOME", value=f"{CACHE}/hf"),
            EnvVarArgs(name="HOME", value="/tmp"),
            *args.wiring.env,
        ]
        mounts = [
            VolumeMountArgs(name="model-cache", mount_path=CACHE),
            VolumeMountArgs(name="tmp", mount_path="/tmp"),
            *args.wiring.volume_mounts,
        ]
        # Conversion holds the model in memory: as much as the server may use.
        resources = ResourceRequirementsArgs(
            requests={"cpu": model.resources.requests.cpu, "memory": model.resources.requests.memory},
            limits={"cpu": model.resources.limits.cpu, "memory": model.resources.limits.memory},
        )

        def container(step: str, command: list[str], step_args: list[str] | None = None) -> ContainerArgs:
            return ContainerArgs(
                name=step,
                image=prepare.image.reference,
                image_pull_policy="IfNotPresent",
                command=command,
                args=step_args,
                env=env,
                resources=resources,
                security_context=container_security_context(args.hardening),
                volume_mounts=mounts,
            )

        labels = {**args.labels, "app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/component": APP_NAME}
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=ObjectMetaArgs(name=f"{model.name}-prepare", namespace=args.namespace, labels=labels),
            spec=JobSpecArgs(
                backoff_limit=2,
                active_deadline_seconds=3600,
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels={**labels, **args.wiring.pod_labels}),
                    spec=PodSpecArgs(
                        restart_policy="Never",
                        service_account_name=args.service_account,
                        automount_service_account_token=args.hardening.automount_service_account_token,
                        enable_service_links=False,
                        security_context=pod_security_context(args.hardening),
                        init_containers=[container("download", ["/bin/sh", "-c", _DOWNLOAD])],
                        containers=[
                            container(
                                "convert",
                                ["python", "-m", "slm_onnx_server.prepare"],
                                [
                                    f"--source={download_dir}",
                                    f"--output={args.output_path}",
                                    f"--precision={prepare.precision}",
                                    f"--execution-provider={(model.onnx.device if model.onnx else 'cpu')}",
                                ],
                            )
                        ],
                        volumes=[
                            VolumeArgs(
                                name="model-cache",
                                persistent_volume_claim=PersistentVolumeClaimVolumeSourceArgs(
                                    claim_name=args.claim_name
                                ),
                            ),
                            VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="8Gi")),
                            *args.wiring.volumes,
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"job": f"{model.name}-prepare"})
