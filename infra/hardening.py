"""Secure defaults for every pod the framework creates, in one place.

Each field is a default a stack can opt OUT of explicitly, per model, under ``hardening:``; nothing
has to be switched on. The pack in ``policies/`` checks the same properties, so an opt-out shows up
as a policy result that needs a waiver.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from infra.config.base import ConfigModel

#: The UID/GID the model servers run as: not root, and >= 10000 so it cannot collide with a host user
#: (NSA/CISA hardening guidance; checkov CKV_K8S_40).
DEFAULT_UID = 10001
#: A reason is one line a reviewer reads in the render and in ``check``: printable text, no line break.
_REASON = re.compile(r"[^\x00-\x1f\x7f]{20,500}")


class DirectAccess(ConfigModel):
    """Calls that reach the model's port from the namespaces of ``network.ingressFromNamespaces``, past the entry
    point. By default the server checks API keys for them too (``entryPoint.modelsCheckKeys``); Ollama cannot,
    and a model with no entry point keys has none to check. Such a stack says why, here, per model (`directAccess`
    of the model; a secure default a stack opts out of with its reason, not a pod setting like ``Hardening``)."""

    unauthenticated_reason: str | None = Field(
        None,
        description="Why the server may answer other namespaces without an API key (one line, 20 to 500 "
        "characters; shown in the render as the `slm-deploy.io/unauthenticated-direct-access` annotation and "
        "admitted by `model-servers-check-keys`). Unset (the default): such a server is a finding, mandatory in "
        "staging and prod.",
    )

    @field_validator("unauthenticated_reason")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and (value != value.strip() or not _REASON.fullmatch(value)):
            raise ValueError(
                "must be one line of 20 to 500 characters saying why the server may answer without a key, "
                "with no leading or trailing space"
            )
        return value


class Hardening(ConfigModel):
    """Pod and container security settings. Defaults follow Pod Security Standards ``restricted``."""

    run_as_user: int = Field(
        DEFAULT_UID, ge=1, description="UID of every container; never 0 (restricted PSS: runAsNonRoot)."
    )
    run_as_group: int = Field(DEFAULT_UID, ge=1, description="Primary GID of every container.")
    fs_group: int = Field(
        DEFAULT_UID, ge=1, description="Group that owns mounted volumes, so the model cache is writable."
    )
    read_only_root_filesystem: bool = Field(
        True,
        description="Mount the image read-only; the engine's writable paths get emptyDirs (NSA/CISA guidance).",
    )
    allow_privilege_escalation: bool = Field(
        False, description="Let a process gain more privileges than its parent (restricted PSS: false)."
    )
    drop_all_capabilities: bool = Field(True, description="Drop every Linux capability (restricted PSS).")
    seccomp_profile: Literal["RuntimeDefault", "Localhost"] = Field(
        "RuntimeDefault", description="Seccomp profile type (restricted PSS: RuntimeDefault or Localhost)."
    )
    seccomp_localhost_profile: str | None = Field(
        None, description="Profile file on the node, required when seccompProfile is Localhost."
    )
    automount_service_account_token: bool = Field(
        False, description="Mount a Kubernetes API token into the pod; model servers never call the API."
    )
