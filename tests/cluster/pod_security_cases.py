"""Pod-level violations of the Pod Security Standards, as a table shared by the tests that check them.

Each case changes a hardened pod spec (the rendered dev Deployment's template) in one way that the
``restricted`` profile forbids, and names the check that Pod Security Admission reports for it.
tests/cluster/test_pod_security_admission.py sends each pod to a real API server; a policy-pack test
can take the same cases through :func:`violating_deployment` and expect the pack to flag each one.
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
    Violation("privileged", _privileged, "privileged"),
    Violation("host-network", _host_network, "host namespaces"),
    Violation("host-pid", _host_pid, "host namespaces"),
    Violation("host-ipc", _host_ipc, "host namespaces"),
    # restricted reports hostPath under its stricter volume check (baseline names it "hostPath volumes").
    Violation("host-path-volume", _host_path, "restricted volume types"),
    Violation("run-as-non-root-false", _run_as_non_root_false, "runAsNonRoot != true"),
    Violation("run-as-user-0", _run_as_root, "runAsUser=0"),
    Violation("allow-privilege-escalation", _privilege_escalation, "allowPrivilegeEscalation != false"),
    Violation("capabilities-not-dropped", _capabilities_not_dropped, "unrestricted capabilities"),
    # restricted reports an added capability under its own check (baseline: "non-default capabilities").
    Violation("capability-sys-admin", _sys_admin, "unrestricted capabilities"),
    Violation("seccomp-unconfined", _seccomp_unconfined, "seccompProfile"),
    Violation("host-port", _host_port, "hostPort"),
    Violation("unsafe-sysctl", _unsafe_sysctl, "forbidden sysctls"),
    Violation("apparmor-unconfined", _apparmor_unconfined, "forbidden AppArmor profile"),
    Violation("selinux-type", _selinux_spc, "seLinuxOptions"),
)


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
