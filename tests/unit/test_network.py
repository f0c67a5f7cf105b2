"""Per reference stack, the exact set of allowed flows (from, to, port): everything else is denied."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.plan.network import allowed_flows, default_deny_namespaces
from infra.plan.stack import StackPlan
from tests.conftest import REFERENCE_STACKS

PlanOf = Callable[[str, bool], StackPlan]
DNS = "kube-system/k8s-app=kube-dns"
PROMETHEUS = "monitoring/app.kubernetes.io/name=prometheus"
#: The Hub and the storage and CDN hosts its downloads are redirected to (stacks/Pulumi.prod.yaml).
HUB_HOSTS = (
    "huggingface.co",
    "cas-server.xethub.hf.co",
    "cas-server.xethub-eu.hf.co",
    "transfer.xethub.hf.co",
    "transfer.xethub-eu.hf.co",
    "us.aws.cdn.hf.co",
    "us.gcp.cdn.hf.co",
    "cdn-lfs-us-1.hf.co",
    "cdn-lfs-eu-1.hf.co",
)
ANYWHERE_PUBLIC = "0.0.0.0/0 (except 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)"


ENVOY = "slm-gateway/app.kubernetes.io/name=envoy"


def expected(
    model: str,
    clients: tuple[str, ...],
    download: str,
    port: int = 8000,
    metrics: bool = True,
    entry_point: bool = True,
) -> set[tuple[str, str, str, str]]:
    pods = f"slm-{model}/app.kubernetes.io/instance={model}"
    flows = {("egress", pods, DNS, "UDP/53"), ("egress", pods, DNS, "TCP/53")}
    if entry_point:
        flows.add(("ingress", ENVOY, pods, f"TCP/{port}"))
    if metrics:
        flows.add(("ingress", PROMETHEUS, pods, f"TCP/{port}"))
    flows |= {("ingress", f"{client}/*", pods, f"TCP/{port}") for client in clients}
    if download == "none":
        pass  # the weights come in an image volume: the kubelet pulls it, the model's pods fetch nothing
    elif download == "cidr":
        flows.add(("egress", pods, ANYWHERE_PUBLIC, "TCP/443"))
    else:
        flows |= {("egress", pods, host, "TCP/443") for host in HUB_HOSTS}
        flows.add(("egress", pods, DNS, "ANY/53"))
    return flows


def endpoint_picker(model: str, metrics_port: int = 8000) -> set[tuple[str, str, str, str]]:
    """The flows of a model's InferencePool picker: the gateway and Prometheus in; DNS, the model's metrics and the
    API server (the private ranges by default) out; the model's pods admit the picker on their metrics port."""
    picker, pods = (
        f"slm-{model}/app.kubernetes.io/instance={model}-epp",
        f"slm-{model}/app.kubernetes.io/instance={model}",
    )
    flows = {("egress", picker, DNS, "UDP/53"), ("egress", picker, DNS, "TCP/53")}
    flows |= {("ingress", ENVOY, picker, "TCP/9002"), ("ingress", PROMETHEUS, picker, "TCP/9090")}
    flows |= {("egress", picker, pods, f"TCP/{metrics_port}"), ("ingress", picker, pods, f"TCP/{metrics_port}")}
    ranges = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    return flows | {("egress", picker, cidr, f"TCP/{port}") for cidr in ranges for port in (443, 6443)}


#: The KEDA HTTP add-on's interceptor, in KEDA's namespace.
INTERCEPTOR = "keda/app.kubernetes.io/component=interceptor,app.kubernetes.io/part-of=keda-add-ons-http"
#: Loki (the log store) admits only pods of the monitoring namespace: the collector, Grafana, Prometheus.
LOKI = {("ingress", "monitoring/*", "monitoring/app.kubernetes.io/instance=loki", "any")}

EXPECTED = {
    # Ollama serves on 11434 and has no metrics endpoint: no metrics ingress at all. The model scales to zero: the
    # KEDA HTTP add-on's interceptor forwards the requests it held (docs/scale-to-zero.md).
    "dev": expected("qwen3-micro", ("apps",), "cidr", port=11434, metrics=False, entry_point=False)
    | {("ingress", INTERCEPTOR, "slm-qwen3-micro/app.kubernetes.io/instance=qwen3-micro", "TCP/11434")}
    | LOKI,
    "staging": expected("phi4-mini", ("apps", "evaluation"), "none")
    | expected("qwen3-4b", ("apps", "evaluation"), "cidr")
    | endpoint_picker("qwen3-4b")
    | LOKI,
    "prod": expected("phi4-mini", ("apps",), "none")
    | expected("qwen3-8b", ("apps",), "fqdn")
    | expected("qwen3-small", ("apps",), "fqdn")
    | LOKI,
    # Both revisions of the canary rollout are the model's pods (app.kubernetes.io/instance): one set of flows.
    "canary": expected("qwen3-4b", ("apps",), "cidr") | LOKI,
}


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_exactly_the_expected_flows_are_allowed(stack: str, plan_of: PlanOf) -> None:
    plan = plan_of(stack, True)
    flows = {(f.direction, f.source, f.destination, f.port) for f in allowed_flows(plan.run.resources)}
    assert flows == EXPECTED[stack]


@pytest.mark.parametrize("stack", REFERENCE_STACKS)
def test_every_model_namespace_denies_by_default(stack: str, plan_of: PlanOf) -> None:
    """Every model's namespace, and the rate limit's Redis's when the entry point has quotas."""
    plan = plan_of(stack, True)
    quotas = plan.config.entry_point.quotas
    redis = {quotas.redis.namespace} if quotas is not None else set()
    assert default_deny_namespaces(plan.run.resources) == {m.k8s_namespace for m in plan.config.models} | redis
