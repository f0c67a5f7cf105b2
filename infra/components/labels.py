"""Label and annotation names shared by components, and the recommended ``app.kubernetes.io/*`` labels."""

from __future__ import annotations

from dataclasses import dataclass

from policies.lib.canary import TRACK_LABEL, VERSION_LABEL

PART_OF = "slm-deploy"
COMPONENT = "model-server"
MANAGED_BY = "pulumi"
#: Namespaces carry this label with their own name (Kubernetes sets it since 1.22, nobody else can).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Asks AKS's cloud provider for a load balancer on the virtual network instead of a public IP.
AZURE_INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"
#: The policy pack's explicit opt-in for a public load balancer (rule no-public-load-balancer).
PUBLIC_EXPOSURE = "slm-deploy.io/public-exposure"
#: The cluster DNS pods (kube-system), the one egress peer every namespace of the stack needs.
KUBE_DNS_LABELS = {"k8s-app": "kube-dns"}


@dataclass(frozen=True)
class ModelLabels:
    app_name: str
    instance: str
    version: str
    extra: tuple[tuple[str, str], ...] = ()
    #: A revision of a canary rollout (``models[].versions``): its name, part of its selector, and its track.
    revision: str | None = None
    track: str | None = None

    @property
    def model_selector(self) -> dict[str, str]:
        """Every pod of the model, whatever its revision (network policies, scrape targets)."""
        return {"app.kubernetes.io/name": self.app_name, "app.kubernetes.io/instance": self.instance}

    @property
    def selector(self) -> dict[str, str]:
        """The stable subset that selects the pods of one Deployment (never changes on upgrade)."""
        return {**self.model_selector, **({VERSION_LABEL: self.revision} if self.revision is not None else {})}

    @property
    def all(self) -> dict[str, str]:
        return {
            **dict(self.extra),
            **self.selector,
            **({TRACK_LABEL: self.track} if self.track is not None else {}),
            "app.kubernetes.io/version": self.version,
            "app.kubernetes.io/component": COMPONENT,
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }


def endpoint_picker_selector(model: str) -> dict[str, str]:
    """The labels that select a model's endpoint picker pods (its InferencePool's EPP, docs/inference-pool.md)."""
    return {"app.kubernetes.io/name": "endpoint-picker", "app.kubernetes.io/instance": f"{model}-epp"}
