"""The whole stack: one Kubernetes provider, then a model server per configured model."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.components.entry_point import EntryPoint, EntryPointArgs, RouteTarget
from infra.components.model_server import ModelServer, ModelServerArgs
from infra.config.secrets import SecretValue
from infra.config.stack import StackConfig
from infra.engines import engine_for

#: Stands in for a secret the offline plan cannot decrypt; it is a Pulumi secret like the real value.
OFFLINE_SECRET_PLACEHOLDER = "offline-placeholder-secret"


def secret_output(value: SecretValue) -> pulumi.Output[str]:
    """A config secret as a Pulumi secret output (a placeholder when only the ciphertext is known)."""
    plaintext = value.plaintext if value.plaintext is not None else OFFLINE_SECRET_PLACEHOLDER
    return pulumi.Output.secret(plaintext)


def deploy(config: StackConfig) -> dict[str, ModelServer]:
    """Declare every resource of the stack. This is the program, for `pulumi up` and the offline plan."""
    provider = k8s.Provider(
        "kubernetes",
        context=config.cluster.context,
        # Server-side apply: field ownership is tracked by the API server, as kubectl and GitOps tools do.
        enable_server_side_apply=True,
    )
    secrets = {name: secret_output(value) for name, value in config.secrets.items()}
    servers: dict[str, ModelServer] = {}
    for model in config.models:
        servers[model.name] = ModelServer(
            model.name,
            ModelServerArgs(model=model, engine=engine_for(model, config), stack=config, secrets=secrets),
            opts=pulumi.ResourceOptions(provider=provider),
        )
    entry = config.entry_point
    if entry.enabled:
        engines = {model.name: engine_for(model, config) for model in config.models}
        EntryPoint(
            "entry-point",
            EntryPointArgs(
                config=entry,
                routes=[
                    RouteTarget(
                        model=model.name,
                        namespace=model.k8s_namespace,
                        service=model.name,
                        port=engines[model.name].port,
                        api_base_path=engines[model.name].api_base_path,
                        depends_on=(servers[model.name].namespace,),
                    )
                    for model in config.models
                    if entry.exposes(model.name)
                ],
                api_keys=secrets[entry.api_keys] if entry.api_keys else None,
                labels=config.labels,
            ),
            opts=pulumi.ResourceOptions(provider=provider),
        )
    pulumi.export("models", {name: server.service.metadata.name for name, server in servers.items()})
    return servers
