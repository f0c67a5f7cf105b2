"""The stack's PriorityClasses: who the scheduler places first, and who may evict whom when a node is full.

Three tiers, rendered by :mod:`infra.components.priority_classes` and named on every pod template slm-deploy
renders (docs/scheduling.md):

- ``slm-deploy-system`` (1,000,000): the gateway's proxies, the endpoint pickers, the rate limit's Redis,
  Prometheus and Alertmanager. Without them no model answers or is watched, however many model servers run.
- ``slm-deploy-serving`` (100,000): the model servers (and the chat UI). GPUs are scarce: a server that cannot
  be placed may evict ordinary and batch pods (default priority 0) but never a system component.
- ``slm-deploy-batch`` (1,000): the model preparation Jobs. Placed before default-priority pods, but with
  ``preemptionPolicy: Never``: a download or conversion waits for room instead of evicting anything.

Values stay far below the built-in ``system-cluster-critical`` (2,000,000,000) and ``system-node-critical``
(2,000,001,000) and the user-defined ceiling of 1,000,000,000, so kube-system's own pods always come first.
No class is ``globalDefault``: the stack never changes the priority of pods it does not render.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PriorityTier:
    name: str
    value: int
    preemption_policy: Literal["PreemptLowerPriority", "Never"]
    description: str


SYSTEM = PriorityTier(
    name="slm-deploy-system",
    value=1_000_000,
    preemption_policy="PreemptLowerPriority",
    description="slm-deploy system components (gateway proxies, endpoint pickers, monitoring): above model servers.",
)
SERVING = PriorityTier(
    name="slm-deploy-serving",
    value=100_000,
    preemption_policy="PreemptLowerPriority",
    description="slm-deploy model servers: above batch and default-priority work, below system components.",
)
BATCH = PriorityTier(
    name="slm-deploy-batch",
    value=1_000,
    # A preparation Job is queued ahead of default-priority pods but never evicts a running pod to start.
    preemption_policy="Never",
    description="slm-deploy batch work (model preparation Jobs): queued first, never preempts.",
)
#: Every tier, highest first.
TIERS: tuple[PriorityTier, ...] = (SYSTEM, SERVING, BATCH)
