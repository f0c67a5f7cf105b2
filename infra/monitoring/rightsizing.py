"""How far a model server's CPU and memory requests are from what its pods use: PromQL, per model.

Requests come from kube-state-metrics (``kube_pod_container_resource_requests``, containers only: init
containers are a separate series and run before the server), use from the kubelet's cAdvisor. Each query
is per pod of the model's Deployment and then the largest pod, because requests are per pod and the
busiest replica is the one that must fit:

- CPU: the 95th percentile over ``window`` of the 5-minute CPU rate (a request sized to p95 leaves the
  peaks to the limit);
- memory: the maximum working set over ``window`` (memory is not compressible: sizing below the peak
  means an OOM kill).

The ratios (use / request) are what docs/sizing.md tells a user to read: far below 1 means the requests
reserve nodes for nothing, above 1 means the pod lives on its limit. The VerticalPodAutoscaler
(``vpa.enabled``) recommends the same from its own histogram; these queries need nothing but Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.monitoring.model import MonitoredModel, quote

#: Resolution of the subqueries: the CPU rate window and step.
STEP = "5m"


@dataclass(frozen=True)
class RightsizingQueries:
    """The PromQL of one model; each returns one value (the largest pod)."""

    cpu_request_cores: str
    cpu_used_p95_cores: str
    memory_request_bytes: str
    memory_used_max_bytes: str

    @property
    def cpu_ratio(self) -> str:
        return f"({self.cpu_used_p95_cores}) / ({self.cpu_request_cores})"

    @property
    def memory_ratio(self) -> str:
        return f"({self.memory_used_max_bytes}) / ({self.memory_request_bytes})"


def rightsizing_queries(model: MonitoredModel, window: str = "7d") -> RightsizingQueries:
    """The requests-versus-use queries of ``model`` over ``window`` (a Prometheus duration)."""
    pods = f"namespace={quote(model.namespace)},pod=~{quote(model.pod_regex)}"
    # cAdvisor also reports the pod's cgroup (container="") and the pause container (container="POD").
    used = f'{pods},container!="",container!="POD"'

    def requested(resource: str) -> str:
        return f"max(sum by (pod) (kube_pod_container_resource_requests{{{pods},resource={quote(resource)}}}))"

    return RightsizingQueries(
        cpu_request_cores=requested("cpu"),
        cpu_used_p95_cores=(
            f"max(quantile_over_time(0.95, sum by (pod) (rate(container_cpu_usage_seconds_total{{{used}}}[{STEP}]))"
            f"[{window}:{STEP}]))"
        ),
        memory_request_bytes=requested("memory"),
        memory_used_max_bytes=(
            f"max(max_over_time(sum by (pod) (container_memory_working_set_bytes{{{used}}})[{window}:{STEP}]))"
        ),
    )
