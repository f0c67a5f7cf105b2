"""KEDA itself, and its HTTP add-on for models that scale to zero, as pinned Helm releases."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_kubernetes.helm.v3 import Release, RepositoryOptsArgs

from infra.config import priority
from infra.config.http_add_on import (
    HTTP_ADD_ON_CHART,
    HTTP_ADD_ON_RELEASE,
    HTTP_ADD_ON_REPOSITORY,
    HTTP_ADD_ON_VERSION,
    INTERCEPTOR_PROXY_PORT,
)

#: KEDA's chart and version (chart and app versions move together); see docs/monitoring.md.
KEDA_CHART = "keda"
KEDA_REPOSITORY = "https://kedacore.github.io/charts"
KEDA_VERSION = "2.20.1"


@dataclass
class KedaArgs:
    namespace: str
    version: str = KEDA_VERSION
    labels: dict[str, str] = field(default_factory=dict)
    #: Install the HTTP add-on too (interceptor, external scaler, operator), for models that scale to zero.
    http_add_on: bool = False


class Keda(pulumi.ComponentResource):
    """KEDA, and optionally its HTTP add-on, as pinned Helm releases."""

    release: Release
    #: None unless ``http_add_on``.
    http_add_on: Release | None

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
            # Hardened like everything else; KEDA's chart runs non-root with a read-only root filesystem. Its pods
            # scale the model servers, so they run at the system priority (the chart's top-level
            # priorityClassName applies to all KEDA components).
            values={
                "priorityClassName": priority.SYSTEM.name,
                **({"podLabels": {"keda": args.labels}} if args.labels else {}),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.http_add_on = None
        if args.http_add_on:
            self.http_add_on = Release(
                f"{name}-http-add-on",
                name=HTTP_ADD_ON_RELEASE,
                chart=HTTP_ADD_ON_CHART,
                version=HTTP_ADD_ON_VERSION,
                repository_opts=RepositoryOptsArgs(repo=HTTP_ADD_ON_REPOSITORY),
                namespace=args.namespace,
                atomic=True,
                # The port the routes and network policies name; the chart's CRDs come with it.
                values={"interceptor": {"proxy": {"port": INTERCEPTOR_PROXY_PORT}}},
                # The add-on's ScaledObject for its interceptor needs KEDA's CRDs.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
        self.register_outputs(
            {"version": args.version, **({"httpAddOn": HTTP_ADD_ON_VERSION} if args.http_add_on else {})}
        )
