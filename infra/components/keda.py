"""KEDA itself, as a pinned Helm release, for the ScaledObjects of the model servers."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_kubernetes.helm.v3 import Release, RepositoryOptsArgs

#: KEDA's chart and version (chart and app versions move together); see docs/monitoring.md.
KEDA_CHART = "keda"
KEDA_REPOSITORY = "https://kedacore.github.io/charts"
KEDA_VERSION = "2.20.1"


@dataclass
class KedaArgs:
    namespace: str
    version: str = KEDA_VERSION
    labels: dict[str, str] = field(default_factory=dict)


class Keda(pulumi.ComponentResource):
    """KEDA, as a pinned Helm release."""

    release: Release

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:scaling:Keda", name, None, opts)
        self.release = Release(
            f"{name}-release",
            name="keda",
            chart=KEDA_CHART,
            version=args.version,
            repository_opts=RepositoryOptsArgs(repo=KEDA_REPOSITORY),
            namespace=args.namespace,
            create_namespace=True,
            atomic=True,
            # Hardened like everything else; KEDA's chart runs non-root with a read-only root filesystem.
            values={"podLabels": {"keda": args.labels}} if args.labels else {},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"version": args.version})
