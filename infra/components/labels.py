"""The recommended ``app.kubernetes.io/*`` labels, computed once per model."""

from __future__ import annotations

from dataclasses import dataclass

PART_OF = "slm-deploy"
COMPONENT = "model-server"


@dataclass(frozen=True)
class ModelLabels:
    app_name: str
    instance: str
    version: str
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def selector(self) -> dict[str, str]:
        """The stable subset that selects the model's pods (never changes on upgrade)."""
        return {"app.kubernetes.io/name": self.app_name, "app.kubernetes.io/instance": self.instance}

    @property
    def all(self) -> dict[str, str]:
        return {
            **dict(self.extra),
            **self.selector,
            "app.kubernetes.io/version": self.version,
            "app.kubernetes.io/component": COMPONENT,
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "pulumi",
        }
