"""SLM-K8S-017: service accounts do not automount their token."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import SERVICE_ACCOUNT, get
from ...lib.rule import AKS, NSA, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if get(args.props, "automountServiceAccountToken") is not False:
        yield "ServiceAccount does not set automountServiceAccountToken: false"


RULE = Rule(
    id="SLM-K8S-017",
    name="service-account-no-automount",
    title="Service accounts must not automount their token",
    severity="medium",
    rationale="Turning automount off on the account protects every pod that uses it, including ones added later.",
    remediation="Set automountServiceAccountToken: false on the ServiceAccount.",
    controls={NSA: ("Protecting Pod service account tokens",), AKS: ("PA-7: least privilege",)},
    checkov=("CKV_K8S_41",),
    resource_types=frozenset({SERVICE_ACCOUNT}),
    check=check,
)
