"""The Kubernetes Pod Security Standards as data: every control of the baseline and restricted profiles,
the allowed values the rules check against, and which rules of a pack cite which control.

Taken from the standard's page for Kubernetes v1.34 (:data:`SOURCE_URL`). The control names are the
page's, without the "(v1.x+)" suffix some carry (kept in :attr:`Control.since`). Rules cite a control
in :attr:`policies.lib.rule.Rule.controls` under the :data:`~policies.lib.rule.PSS` framework as
``"<profile>: <control name>"`` (see :attr:`Control.ref`); a test fails when a control has no rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from .rule import PSS

SOURCE_URL = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
KUBERNETES_VERSION = "v1.34"
#: The framework name rules cite the controls under.
FRAMEWORK = PSS

Profile = Literal["baseline", "restricted"]
PROFILES: tuple[Profile, ...] = ("baseline", "restricted")


@dataclass(frozen=True)
class Control:
    profile: Profile
    name: str
    #: What the control restricts (a summary of the page's "Restricted Fields").
    fields: str
    #: The policy version the control (in this form) applies from, as the page notes it; "" if none.
    since: str = ""

    @property
    def ref(self) -> str:
        """How a rule cites the control: ``"baseline: Host Ports"``."""
        return f"{self.profile}: {self.name}"


_CONTAINERS = "containers, initContainers, ephemeralContainers"

#: Every control of the two profiles, in the page's order (the restricted profile also includes all
#: of baseline; its Seccomp and Capabilities controls tighten the baseline ones of the same name).
CONTROLS: tuple[Control, ...] = (
    Control("baseline", "HostProcess", f"securityContext.windowsOptions.hostProcess of the pod and {_CONTAINERS}"),
    Control("baseline", "Host Namespaces", "spec.hostNetwork, spec.hostPID, spec.hostIPC"),
    Control("baseline", "Privileged Containers", f"securityContext.privileged of {_CONTAINERS}"),
    Control("baseline", "Capabilities", f"securityContext.capabilities.add of {_CONTAINERS}"),
    Control("baseline", "HostPath Volumes", "spec.volumes[*].hostPath"),
    Control("baseline", "Host Ports", f"ports[*].hostPort of {_CONTAINERS}"),
    Control(
        "baseline",
        "Host Probes / Lifecycle Hooks",
        f"httpGet.host and tcpSocket.host of the probes and lifecycle hooks of {_CONTAINERS}",
        since="v1.34",
    ),
    Control(
        "baseline",
        "AppArmor",
        f"securityContext.appArmorProfile.type of the pod and {_CONTAINERS}; "
        "annotations container.apparmor.security.beta.kubernetes.io/*",
    ),
    Control("baseline", "SELinux", f"securityContext.seLinuxOptions type, user and role of the pod and {_CONTAINERS}"),
    Control("baseline", "/proc Mount Type", f"securityContext.procMount of {_CONTAINERS}"),
    Control("baseline", "Seccomp", f"securityContext.seccompProfile.type of the pod and {_CONTAINERS}"),
    Control("baseline", "Sysctls", "spec.securityContext.sysctls[*].name"),
    Control("restricted", "Volume Types", "spec.volumes[*]"),
    Control(
        "restricted",
        "Privilege Escalation",
        f"securityContext.allowPrivilegeEscalation of {_CONTAINERS}",
        since="v1.8",
    ),
    Control("restricted", "Running as Non-root", f"securityContext.runAsNonRoot of the pod and {_CONTAINERS}"),
    Control(
        "restricted",
        "Running as Non-root user",
        f"securityContext.runAsUser of the pod and {_CONTAINERS}",
        since="v1.23",
    ),
    Control(
        "restricted", "Seccomp", f"securityContext.seccompProfile.type of the pod and {_CONTAINERS}", since="v1.19"
    ),
    Control(
        "restricted",
        "Capabilities",
        f"securityContext.capabilities.drop and .add of {_CONTAINERS}",
        since="v1.22",
    ),
)
CONTROLS_BY_REF: dict[str, Control] = {c.ref: c for c in CONTROLS}

# -- Allowed values, as the page lists them -------------------------------------------------------------

#: Baseline "Capabilities": what ``capabilities.add`` may hold (the container runtime's default set).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
#: Restricted "Capabilities": ``drop`` must contain ALL, ``add`` may only hold these.
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
#: Baseline "AppArmor": ``appArmorProfile.type`` (undefined also allowed).
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
#: Baseline "AppArmor": annotation values (undefined also allowed); ``localhost/<profile>`` too.
APPARMOR_ANNOTATION_VALUES = frozenset({"runtime/default"})
APPARMOR_ANNOTATION_LOCALHOST = "localhost/"
#: Baseline "SELinux": ``seLinuxOptions.type`` (undefined also allowed); user and role must be unset or "".
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
#: Baseline "/proc Mount Type".
PROC_MOUNT_TYPES = frozenset({"Default"})
#: Baseline "Seccomp" refuses ``Unconfined``; restricted "Seccomp" requires one of these explicitly.
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
#: Baseline "Sysctls": the "safe" subset listed on the page for v1.34.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
#: Restricted "Volume Types": every volume must use one of these sources.
#: ``image`` too: the admission controller has allowed image volumes at restricted since v1.33
#: (kubernetes/kubernetes#130394, ``check_restrictedVolumes.go``: whoever may run an image may mount one); the
#: page's list lags behind (kubernetes/website#55370).
RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)

# -- Which rules cite which control ------------------------------------------------------------------------


class CitingRule(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def controls(self) -> Mapping[str, tuple[str, ...]]: ...


def _is_control_ref(ref: str) -> bool:
    return ref.split(":", 1)[0] in PROFILES and ":" in ref


def rules_by_control(rules: Iterable[CitingRule]) -> dict[Control, list[CitingRule]]:
    """Every control, with the rules whose ``controls`` cite it (in the rules' order)."""
    found: dict[Control, list[CitingRule]] = {c: [] for c in CONTROLS}
    for rule in rules:
        for ref in rule.controls.get(FRAMEWORK, ()):
            control = CONTROLS_BY_REF.get(ref)
            if control is not None and rule not in found[control]:
                found[control].append(rule)
    return found


def uncovered(rules: Iterable[CitingRule]) -> list[Control]:
    """The controls no rule cites."""
    return [c for c, citing in rules_by_control(rules).items() if not citing]


def unknown_refs(rules: Iterable[CitingRule]) -> list[tuple[str, str]]:
    """``(rule id, citation)`` for every ``"<profile>: ..."`` citation that names no control (a typo)."""
    return [
        (rule.id, ref)
        for rule in rules
        for ref in rule.controls.get(FRAMEWORK, ())
        if _is_control_ref(ref) and ref not in CONTROLS_BY_REF
    ]


def other_refs(rules: Iterable[CitingRule]) -> dict[str, list[CitingRule]]:
    """Citations under the framework that are not a profile's control (e.g. the admission labels)."""
    found: dict[str, list[CitingRule]] = {}
    for rule in rules:
        for ref in rule.controls.get(FRAMEWORK, ()):
            if not _is_control_ref(ref):
                found.setdefault(ref, []).append(rule)
    return found
