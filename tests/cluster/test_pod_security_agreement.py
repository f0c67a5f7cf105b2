"""Pod Security Admission and the policy pack agree on every pod-level violation (issue 16, part 2).

One table (tests/cluster/pod_security_cases.py) drives both sides. For each case, the pod is sent to
the real API server (server dry-run, in the dev model's namespace, labelled ``restricted`` as
slm-deploy labels it) and the pack (policies/, through the analyzer protocol as ``slm-deploy check``
runs it, every policy mandatory) is run on that same pod and on the Deployment whose template it is:

* admission refuses the pod, naming the case's check, and the pack reports a mandatory violation of
  the case's rule on both objects;
* every check admission names is covered by a rule of the pack that flags the pod
  (:data:`PSA_CHECK_RULES`), and every Pod Security Standards rule the pack flags is explained by a
  check admission names: neither side refuses more than the other.

Admission judges the pod after the API server's defaulting; the pack judges the manifest Pulumi sends.
One difference follows, and only one: with ``hostNetwork: true`` the server sets each container's
``hostPort`` to its ``containerPort``, so admission also names ``hostPort`` where the pack flags the
cause (``no-host-namespaces``) but not ``no-host-ports`` (:func:`defaulted_checks`; a test below shows
the defaulting on the real server).

The hardened pod (the rendered template itself) is admitted without a warning and passes every rule
whose ``controls`` cite a Pod Security Standards control, on the pod, the Deployment and the
namespace. A disagreement is a bug in admission's reading of the standard or, far likelier, in a rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from infra.policy.analyzer import run_policy_pack
from infra.policy.fixtures import resources_from
from infra.policy.model import PolicyReport, PolicyResult
from tests.cluster.conftest import Cluster
from tests.cluster.pod_security_cases import (
    PSA_CHECK_RULES,
    VIOLATIONS,
    Violation,
    hardened_pod,
    violating_deployment,
    violating_pod,
)
from tests.cluster.renders import Rendered, of_kind, priority_classes

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

#: Every policy mandatory, as in prod; ``waived-results`` must stay advisory (the pack refuses otherwise).
PACK_CONFIG = {"all": "mandatory", "waived-results": "advisory"}
STACK_CONFIG = {"environment": "dev"}
#: The framework a rule's ``controls`` cite for the Pod Security Standards (policies/lib/rule.py: PSS).
PSS_FRAMEWORK = "Pod Security Standards"
ENFORCE = "pod-security.kubernetes.io/enforce"

_REFUSAL = re.compile(r'violates PodSecurity "restricted:[^"]*": (.*)')
_TYPES = {
    "Namespace": "kubernetes:core/v1:Namespace",
    "Pod": "kubernetes:core/v1:Pod",
    "Deployment": "kubernetes:apps/v1:Deployment",
}


@dataclass(frozen=True)
class DevModel:
    namespace: dict[str, Any]
    deployment: dict[str, Any]
    pod: dict[str, Any]


@pytest.fixture(scope="module")
def dev(cluster: Cluster, rendered: Callable[[str], Rendered]) -> DevModel:
    """The dev model server's Deployment and pod, with its namespace and service account created for real."""
    documents = rendered("dev")
    deployment = next(
        d
        for d in of_kind(documents, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "model-server"
    )
    namespace_name = deployment["metadata"]["namespace"]
    namespace = next(n for n in of_kind(documents, "Namespace") if n["metadata"]["name"] == namespace_name)
    assert namespace["metadata"]["labels"].get(ENFORCE) == "restricted"
    account = deployment["spec"]["template"]["spec"].get("serviceAccountName")
    accounts = [
        a
        for a in of_kind(documents, "ServiceAccount")
        if a["metadata"]["name"] == account and a["metadata"].get("namespace") == namespace_name
    ]
    cluster.apply([*priority_classes(documents), namespace, *accounts])
    return DevModel(namespace, deployment, hardened_pod(deployment, "psa-agreement"))


def refused_checks(stderr: str) -> list[str]:
    """The checks a Pod Security Admission refusal names: ``<check> (<detail>), <check> (<detail>)``."""
    match = _REFUSAL.search(stderr)
    if match is None:
        return []
    text, checks, i = match.group(1), [], 0
    while (opening := text.find(" (", i)) >= 0:
        checks.append(text[i:opening].strip())
        depth, j = 0, opening + 1
        while j < len(text):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        i = j + 1
        while i < len(text) and text[i] in ", ":
            i += 1
    return checks


def defaulted_checks(pod: Mapping[str, Any]) -> dict[str, str]:
    """Checks admission names on fields the API server's defaulting adds, with the rule that flags the cause.

    ``SetDefaults_PodSpec``: a pod on the host network gets ``hostPort = containerPort`` on every port
    of its containers. The pack never sees that value; it flags ``hostNetwork`` itself.
    """
    if pod["spec"].get("hostNetwork") is True:
        return {"hostPort": "no-host-namespaces"}
    return {}


def _admission(cluster: Cluster, pod: dict[str, Any]) -> tuple[bool, str]:
    """(admitted, kubectl's stderr) of a server dry-run of ``pod``: every admission plugin runs, nothing is stored."""
    result = cluster.apply([pod], "--dry-run=server", check=False)
    return result.returncode == 0, result.stderr


def _label(document: Mapping[str, Any]) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


def _run_pack(*documents: dict[str, Any]) -> PolicyReport:
    """The pack on ``documents`` as recorded resources (the inputs Pulumi would send: the manifests' fields)."""
    entries = [{"type": _TYPES[d["kind"]], "name": _label(d), "props": d} for d in documents]
    return run_policy_pack(resources_from(entries), PACK_CONFIG, STACK_CONFIG)


def _pss_rules(report: PolicyReport) -> set[str]:
    return {p.name for p in report.policies if any(PSS_FRAMEWORK in framework for framework in p.controls)}


def _pss_results(report: PolicyReport, document: Mapping[str, Any]) -> list[PolicyResult]:
    pss = _pss_rules(report)
    return [r for r in report.results if r.resource_name == _label(document) and r.policy_name in pss]


def test_the_table_names_pss_rules_of_the_pack() -> None:
    """Every rule the table and the check map name is a rule of the pack that cites a PSS control."""
    report = run_policy_pack([], PACK_CONFIG, STACK_CONFIG)
    pss = _pss_rules(report)
    named = {case.pack_rule for case in VIOLATIONS} | {r for rules in PSA_CHECK_RULES.values() for r in rules}
    assert named <= pss, f"not PSS rules of the pack: {sorted(named - pss)}"
    assert {case.psa_check for case in VIOLATIONS} <= set(PSA_CHECK_RULES)
    for case in VIOLATIONS:
        assert case.pack_rule == PSA_CHECK_RULES[case.psa_check][0], case.id


def test_the_refusal_parser() -> None:
    stderr = (
        'Error from server (Forbidden): pods "p" is forbidden: violates PodSecurity "restricted:latest": '
        'privileged (container "ollama" must not set securityContext.privileged=true), '
        'unrestricted capabilities (container "ollama" must set securityContext.capabilities.drop=["ALL"]; '
        'container "ollama" must not include "SYS_ADMIN" in securityContext.capabilities.add (x))\n'
    )
    assert refused_checks(stderr) == ["privileged", "unrestricted capabilities"]
    assert refused_checks("some other error") == []


def test_the_hardened_pod_is_admitted_and_passes_every_pss_rule(cluster: Cluster, dev: DevModel) -> None:
    admitted, stderr = _admission(cluster, dev.pod)
    assert admitted, stderr
    assert "PodSecurity" not in stderr, stderr

    report = _run_pack(dev.namespace, dev.deployment, dev.pod)
    for document in (dev.namespace, dev.deployment, dev.pod):
        problems = [f"{r.policy_name}: {r.status}: {r.message}" for r in _pss_results(report, document)]
        problems = [p for p in problems if ": pass: " not in p]
        assert not problems, f"{_label(document)} is admitted, yet the pack reports:\n" + "\n".join(problems)
    # The workload rules really ran on the pod and the Deployment (a rule that does not apply passes silently).
    for document in (dev.deployment, dev.pod):
        passed = {r.policy_name for r in _pss_results(report, document) if r.status == "pass"}
        assert {case.pack_rule for case in VIOLATIONS} <= passed, _label(document)
    namespace_passed = {r.policy_name for r in _pss_results(report, dev.namespace) if r.status == "pass"}
    assert "namespace-pod-security" in namespace_passed


def test_the_api_server_defaults_host_ports_on_the_host_network(cluster: Cluster, dev: DevModel) -> None:
    """Why admission names ``hostPort`` for a pod that sets only ``hostNetwork`` (see :func:`defaulted_checks`)."""
    case = next(case for case in VIOLATIONS if case.id == "host-network")
    pod = violating_pod(dev.pod, case)
    assert not any("hostPort" in port for c in pod["spec"]["containers"] for port in c.get("ports", []))
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "psa-agreement-unlabelled"}}])
    pod["metadata"]["namespace"] = "psa-agreement-unlabelled"
    pod["spec"].pop("serviceAccountName", None)
    result = cluster.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod))
    served = json.loads(result.stdout)
    ports = [port for c in served["spec"]["containers"] for port in c.get("ports", [])]
    assert ports and all(port["hostPort"] == port["containerPort"] for port in ports), ports
    assert set(defaulted_checks(pod)) == {"hostPort"}


@pytest.mark.parametrize("case", VIOLATIONS, ids=[case.id for case in VIOLATIONS])
def test_admission_and_the_pack_agree(cluster: Cluster, dev: DevModel, case: Violation) -> None:
    pod = violating_pod(dev.pod, case)
    deployment = violating_deployment(dev.deployment, case)

    admitted, stderr = _admission(cluster, pod)
    assert not admitted, f"{case.id}: the API server admitted the pod"
    checks = refused_checks(stderr)
    assert case.psa_check in checks, stderr
    unknown = [c for c in checks if c not in PSA_CHECK_RULES]
    assert not unknown, f"admission names checks the table does not map to rules: {unknown}\n{stderr}"

    report = _run_pack(pod, deployment)
    explained = {rule for check in checks for rule in PSA_CHECK_RULES[check]}
    for document in (pod, deployment):
        results = _pss_results(report, document)
        not_run = [f"{r.policy_name}: {r.message}" for r in results if r.status not in ("pass", "violation")]
        assert not not_run, f"{_label(document)}: {not_run}"
        flagged = {r.policy_name: r for r in results if r.status == "violation"}
        where = f"{case.id} on {_label(document)}: admission names {checks}; the pack flags {sorted(flagged)}"
        assert case.pack_rule in flagged, where
        assert flagged[case.pack_rule].enforcement_level == "mandatory" and flagged[case.pack_rule].blocking, where
        defaulted = defaulted_checks(pod)
        missed = [
            check
            for check in checks
            if PSA_CHECK_RULES[check][0] not in flagged and defaulted.get(check) not in flagged
        ]
        assert not missed, f"admission refuses for {missed}, the pack does not: {where}"
        beyond = sorted(set(flagged) - explained)
        assert not beyond, f"the pack flags {beyond}, admission names no such check: {where}"
