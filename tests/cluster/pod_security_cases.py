"""Pod-level violations of the Pod Security Standards, as a table shared by the tests that check them.

Each case changes a hardened pod spec (the rendered dev Deployment's template) in one way that the
``restricted`` profile forbids, and names the check that Pod Security Admission reports for it and the
policy of the pack (policies/rules/) that must flag it. tests/cluster/test_pod_security_admission.py
sends each pod to a real API server; tests/cluster/test_pod_security_agreement.py sends it again and
runs the pack on the same pod and on :func:`violating_deployment`, and holds the two to agree
(:data:`PSA_CHECK_RULES` maps every check admission names to the rules that cover it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PodSpec = dict[str, Any]


@dataclass(frozen=True)
class Violation:
    id: str
    #: Changes a pod spec in place.
    apply: Callable[[PodSpec], None]
    #: The Pod Security Admission check named in the rejection (``<check> (<detail>)``) under the
    #: ``restricted`` profile, which replaces some baseline checks with stricter ones.
    psa_check: str
    #: The policy of the pack (``Rule.name``, one citing a Pod Security Standards control) that must
    #: report a violation of the same pod and of the Deployment whose template it is.
    pack_rule: str


def _main(spec: PodSpec) -> dict[str, Any]:
    container: dict[str, Any] = spec["containers"][0]
    return container


def _container_security(spec: PodSpec) -> dict[str, Any]:
    context: dict[str, Any] = _main(spec).setdefault("securityContext", {})
    return context


def _privileged(spec: PodSpec) -> None:
    context = _container_security(spec)
    context["privileged"] = True
    # A privileged container escalates by definition: the API server refuses the pair as invalid.
    context.pop("allowPrivilegeEscalation", None)


def _host_network(spec: PodSpec) -> None:
    spec["hostNetwork"] = True


def _host_pid(spec: PodSpec) -> None:
    spec["hostPID"] = True


def _host_ipc(spec: PodSpec) -> None:
    spec["hostIPC"] = True


def _host_path(spec: PodSpec) -> None:
    spec.setdefault("volumes", []).append({"name": "host", "hostPath": {"path": "/var/lib", "type": "Directory"}})
    _main(spec).setdefault("volumeMounts", []).append({"name": "host", "mountPath": "/host", "readOnly": True})


def _run_as_non_root_false(spec: PodSpec) -> None:
    _container_security(spec)["runAsNonRoot"] = False


def _run_as_root(spec: PodSpec) -> None:
    _container_security(spec)["runAsUser"] = 0


def _privilege_escalation(spec: PodSpec) -> None:
    _container_security(spec)["allowPrivilegeEscalation"] = True


def _capabilities_not_dropped(spec: PodSpec) -> None:
    _container_security(spec)["capabilities"] = {}


def _sys_admin(spec: PodSpec) -> None:
    _container_security(spec)["capabilities"] = {"drop": ["ALL"], "add": ["SYS_ADMIN"]}


def _seccomp_unconfined(spec: PodSpec) -> None:
    _container_security(spec)["seccompProfile"] = {"type": "Unconfined"}


def _host_port(spec: PodSpec) -> None:
    for port in _main(spec).get("ports", []):
        port["hostPort"] = port["containerPort"]
    if not _main(spec).get("ports"):
        _main(spec)["ports"] = [{"containerPort": 8080, "hostPort": 8080}]


def _unsafe_sysctl(spec: PodSpec) -> None:
    spec.setdefault("securityContext", {})["sysctls"] = [{"name": "kernel.msgmax", "value": "65536"}]


def _apparmor_unconfined(spec: PodSpec) -> None:
    _container_security(spec)["appArmorProfile"] = {"type": "Unconfined"}


def _selinux_spc(spec: PodSpec) -> None:
    _container_security(spec)["seLinuxOptions"] = {"type": "spc_t"}


VIOLATIONS: tuple[Violation, ...] = (
    Violation("privileged", _privileged, "privileged", "no-privileged-containers"),
    Violation("host-network", _host_network, "host namespaces", "no-host-namespaces"),
    Violation("host-pid", _host_pid, "host namespaces", "no-host-namespaces"),
    Violation("host-ipc", _host_ipc, "host namespaces", "no-host-namespaces"),
    # restricted reports hostPath under its stricter volume check (baseline names it "hostPath volumes").
    Violation("host-path-volume", _host_path, "restricted volume types", "restricted-volume-types"),
    Violation("run-as-non-root-false", _run_as_non_root_false, "runAsNonRoot != true", "run-as-non-root"),
    Violation("run-as-user-0", _run_as_root, "runAsUser=0", "run-as-non-root"),
    Violation(
        "allow-privilege-escalation",
        _privilege_escalation,
        "allowPrivilegeEscalation != false",
        "no-privilege-escalation",
    ),
    Violation(
        "capabilities-not-dropped", _capabilities_not_dropped, "unrestricted capabilities", "drop-all-capabilities"
    ),
    # restricted reports an added capability under its own check (baseline: "non-default capabilities").
    Violation("capability-sys-admin", _sys_admin, "unrestricted capabilities", "drop-all-capabilities"),
    Violation("seccomp-unconfined", _seccomp_unconfined, "seccompProfile", "seccomp-profile"),
    Violation("host-port", _host_port, "hostPort", "no-host-ports"),
    Violation("unsafe-sysctl", _unsafe_sysctl, "forbidden sysctls", "safe-sysctls"),
    Violation("apparmor-unconfined", _apparmor_unconfined, "forbidden AppArmor profile", "apparmor-profile"),
    Violation("selinux-type", _selinux_spc, "seLinuxOptions", "selinux-options"),
)

#: Every check Pod Security Admission may name under ``restricted`` (its ``forbiddenReason`` strings),
#: and the pack's policies that cover it: the first must flag a pod the check refuses, the others may
#: (a restricted check that replaces a baseline one is also covered by the pack's baseline rule).
PSA_CHECK_RULES: dict[str, tuple[str, ...]] = {
    "privileged": ("no-privileged-containers",),
    "host namespaces": ("no-host-namespaces",),
    "hostPath volumes": ("restricted-volume-types",),
    "restricted volume types": ("restricted-volume-types",),
    "runAsNonRoot != true": ("run-as-non-root",),
    "runAsUser=0": ("run-as-non-root",),
    "allowPrivilegeEscalation != false": ("no-privilege-escalation",),
    "unrestricted capabilities": ("drop-all-capabilities", "baseline-capabilities"),
    "non-default capabilities": ("baseline-capabilities",),
    "seccompProfile": ("seccomp-profile",),
    "hostPort": ("no-host-ports",),
    "forbidden sysctls": ("safe-sysctls",),
    "forbidden AppArmor profile": ("apparmor-profile",),
    "forbidden AppArmor profiles": ("apparmor-profile",),
    "seLinuxOptions": ("selinux-options",),
    "procMount": ("proc-mount-default",),
    "hostProcess": ("no-host-process",),
}


def hardened_pod(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    """A Pod made from a rendered Deployment's template, in the Deployment's namespace."""
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": deployment["metadata"]["namespace"],
            "labels": dict(template["metadata"].get("labels", {})),
        },
        "spec": copy.deepcopy(template["spec"]),
    }


def violating_pod(pod: dict[str, Any], case: Violation) -> dict[str, Any]:
    changed = copy.deepcopy(pod)
    changed["metadata"]["name"] = f"{pod['metadata']['name']}-{case.id}"
    case.apply(changed["spec"])
    return changed


def violating_deployment(deployment: dict[str, Any], case: Violation) -> dict[str, Any]:
    """The same violation in a Deployment's pod template (for the policy pack, which checks Deployments)."""
    changed = copy.deepcopy(deployment)
    case.apply(changed["spec"]["template"]["spec"])
    return changed
