"""The whole stack: one Kubernetes provider, then a model server per configured model."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

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
    pulumi.export("models", {name: server.service.metadata.name for name, server in servers.items()})
    return servers
