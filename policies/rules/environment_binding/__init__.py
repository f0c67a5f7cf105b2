"""SLM-GOV-003 (stack, never waivable): the stack is judged at the level it is bound to, not the one it declares.

The level file (``--policy-pack-config policies/config/<level>.json``) is chosen by the stack's *name*:
each level file lists the stacks it binds in this policy's ``stacks`` property, and a stack no file
lists gets ``prod``. The stack file only *declares* ``slm-deploy:environment``; this policy refuses the
run when the declaration disagrees with the level the pack is running at (``environment``, set in
each level file), so a prod stack that says ``environment: dev`` cannot pass on dev's advisory levels.

Under the Pulumi CLI it also reads the stack's name from the resources' URNs and refuses a level file
that does not bind that stack (a pipeline passing ``dev.json`` for the prod stack), except the
strictest level, which judges every stack no level file binds.

The level is bound to the target too (:mod:`policies.lib.targets`): each level file lists the clusters it may
target (``contexts``, ``clusterIds``), and ``slm-deploy check`` judges a stack whose target a stricter level
lists at that level, so the dev stack pointed at the prod cluster's context must declare ``prod`` and pass
prod's rules. Under the Pulumi CLI a level file that lists the stack's target binds it as its name would.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib import stack_config, waivers
from ...lib.rule import SLM, Rule
from ...lib.targets import CLUSTER_IDS, CONTEXTS, listed, stack_target

#: The level that judges a stack no level file binds (kept equal to infra.policy.pack_config.STRICTEST_LEVEL).
STRICTEST_LEVEL = "prod"


def stack_name(urns: list[str]) -> str | None:
    """The stack's name from a resource URN (``urn:pulumi:<stack>::<project>::<type>::<name>``)."""
    for urn in urns:
        head, _, rest = urn.partition("::")
        if rest and head.startswith("urn:pulumi:"):
            return head.removeprefix("urn:pulumi:")
    return None


def binds(entries: list[str], stack: str) -> bool:
    return any(stack == entry or fnmatchcase(stack, entry) for entry in entries)


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    bound = str(config.get("environment") or "")
    if not bound:
        yield (
            None,
            "the policy config names no environment: run with --policy-pack-config policies/config/<level>.json "
            "for the level the stack is bound to (slm-deploy check chooses it by the stack's name)",
        )
        return
    declared = waivers.environment()
    if declared == "unknown":
        yield None, f"slm-deploy:environment is not set; the stack is bound to '{bound}'"
    elif declared != bound:
        yield (
            None,
            f"the stack declares slm-deploy:environment '{declared}' but is bound to the '{bound}' level: a stack "
            f"file does not choose its own strictness. Set slm-deploy:environment: {bound}, or change the binding "
            "(the stacks lists of policies/config/<level>.json, reviewed by the policy owners)",
        )
    stacks = [str(s) for s in config.get("stacks") or []]
    name = stack_name([r.urn for r in args.resources])
    target = stack_target(stack_config.value("cluster", default={}))
    by_target = target is not None and listed(
        target, [str(c) for c in config.get(CONTEXTS) or []], [str(c) for c in config.get(CLUSTER_IDS) or []]
    )
    if name is not None and bound != STRICTEST_LEVEL and not binds(stacks, name) and not by_target:
        yield (
            None,
            f"stack '{name}' is not bound to the '{bound}' level (this level file binds: "
            f"{', '.join(stacks) or 'no stack'}); use the level file that binds it, or "
            f"{STRICTEST_LEVEL}.json for a stack no level file binds",
        )


RULE = Rule(
    id="SLM-GOV-003",
    name="environment-binding",
    title="The stack's declared environment must match the level it is bound to",
    severity="critical",
    rationale=(
        "The level file is chosen by the stack's name, not by the stack file: a stack that declared a weaker "
        "environment than the one it is bound to would otherwise pass on advisory levels and skip the "
        "environment's own config checks."
    ),
    remediation=(
        "Set slm-deploy:environment to the bound level, or move the stack to another level in the stacks list "
        "of policies/config/<level>.json in a change the policy owners review."
    ),
    controls={SLM: ("Governance: a change cannot weaken its own gate",)},
    kind="stack",
    config={
        "environment": {
            "type": "string",
            "default": "",
            "description": "The level this file is: the stack's slm-deploy:environment must equal it.",
        },
        "stacks": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": [],
            "description": "Stack names (or glob patterns) bound to this level; unknown stacks get prod.",
        },
        CONTEXTS: {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": [],
            "description": "kubeconfig contexts (globs) of the clusters bound to this level: a stack targeting one is "
            "judged at least at this level.",
        },
        CLUSTER_IDS: {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": [],
            "description": "AKS cluster resource ids (globs, case-insensitive) bound to this level.",
        },
    },
    check=check,
    waivable=False,
)
