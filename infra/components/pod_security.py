"""Pod security for every pod and namespace the framework creates, in one module.

The settings themselves are :class:`infra.hardening.Hardening` (secure defaults, documented per field,
opt-out per model); this module turns them into Kubernetes security contexts, and labels namespaces for
Pod Security Admission. Every component that makes a pod or a namespace calls it, so a default changes
in one place and the policy pack checks the same properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    ContainerArgs,
    EnvVarArgs,
    PodSecurityContextArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.engines.base import PrepareStep
from infra.hardening import Hardening

PodSecurityLevel = Literal["restricted", "baseline"]
PSA_MODES = ("enforce", "audit", "warn")
PSA_PREFIX = "pod-security.kubernetes.io"


def psa_labels(enforce: PodSecurityLevel = "restricted") -> dict[str, str]:
    """Pod Security Admission labels: ``enforce`` at the given level, audit and warn always ``restricted``.

    Each mode is pinned to ``latest``: the admission controller's current definition of the level.
    """
    levels = {"enforce": enforce, "audit": "restricted", "warn": "restricted"}
    return {
        **{f"{PSA_PREFIX}/{mode}": levels[mode] for mode in PSA_MODES},
        **{f"{PSA_PREFIX}/{mode}-version": "latest" for mode in PSA_MODES},
    }


def restricted_namespace(
    resource_name: str,
    namespace: str,
    labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    enforce: PodSecurityLevel = "restricted",
) -> k8s.core.v1.Namespace:
    """A Namespace labelled for Pod Security Admission (``enforce`` may be relaxed to baseline, never below)."""
    return k8s.core.v1.Namespace(
        resource_name,
        metadata=ObjectMetaArgs(name=namespace, labels={**labels, **psa_labels(enforce)}),
        opts=opts,
    )


def _seccomp(hardening: Hardening) -> SeccompProfileArgs:
    return SeccompProfileArgs(
        type=hardening.seccomp_profile,
        localhost_profile=hardening.seccomp_localhost_profile if hardening.seccomp_profile == "Localhost" else None,
    )


def container_security_context(hardening: Hardening) -> SecurityContextArgs:
    """The container-level half of the secure defaults."""
    return SecurityContextArgs(
        privileged=False,
        allow_privilege_escalation=hardening.allow_privilege_escalation,
        read_only_root_filesystem=hardening.read_only_root_filesystem,
        run_as_non_root=True,
        run_as_user=hardening.run_as_user,
        run_as_group=hardening.run_as_group,
        capabilities=CapabilitiesArgs(drop=["ALL"]) if hardening.drop_all_capabilities else None,
        seccomp_profile=_seccomp(hardening),
    )


def step_container(
    step: PrepareStep,
    image: str,
    env: list[EnvVarArgs],
    resources: ResourceRequirementsArgs,
    hardening: Hardening,
    mounts: list[VolumeMountArgs],
) -> ContainerArgs:
    """A hardened container that runs one preparation step (an init container, or a Job's container)."""
    return ContainerArgs(
        name=step.name,
        image=image,
        image_pull_policy="IfNotPresent",
        command=step.command,
        args=step.args or None,
        env=env + [EnvVarArgs(name=k, value=v) for k, v in sorted(step.env.items())],
        resources=resources,
        security_context=container_security_context(hardening),
        volume_mounts=mounts,
    )


def pod_security_context(hardening: Hardening) -> PodSecurityContextArgs:
    """The pod-level half of the secure defaults."""
    return PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=hardening.run_as_user,
        run_as_group=hardening.run_as_group,
        fs_group=hardening.fs_group,
        # Re-own the cache only when needed: a recursive chown of many GB delays every start.
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=_seccomp(hardening),
    )


def restricted_pod_values(uid: int) -> dict[str, object]:
    """A pod ``securityContext`` for a chart's values that passes the `restricted` Pod Security level."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_values(uid: int) -> dict[str, object]:
    """A container ``securityContext`` for a chart's values: `restricted`, and a read-only root filesystem."""
    return {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
