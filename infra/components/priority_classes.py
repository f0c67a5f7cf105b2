"""The stack's PriorityClasses (tiers defined in :mod:`infra.config.priority`).

PriorityClasses are cluster-scoped: every stack on a cluster renders the same three, identically (without the
stack's own labels, which would differ from stack to stack and make server-side apply report a conflict). They
are retained when a stack is destroyed, since another stack's pods may still name them (a pod naming a missing
class is refused at creation).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.components.labels import MANAGED_BY, PART_OF
from infra.config.priority import TIERS

LABELS = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY}


class PriorityClasses(pulumi.ComponentResource):
    """One PriorityClass per tier; ``classes`` by name, as an escape hatch."""

    classes: dict[str, k8s.scheduling.v1.PriorityClass]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:scheduling:PriorityClasses", name, None, opts)
        self.classes = {
            tier.name: k8s.scheduling.v1.PriorityClass(
                f"{name}-{tier.name}",
                metadata=ObjectMetaArgs(name=tier.name, labels=dict(LABELS)),
                value=tier.value,
                # globalDefault left unset (false): the stack never changes the priority of pods it does not render.
                preemption_policy=tier.preemption_policy,
                description=tier.description,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            for tier in TIERS
        }
        self.register_outputs({tier.name: tier.value for tier in TIERS})
