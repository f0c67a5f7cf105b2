"""SLM-SRV-003: a model server takes only the flags and settings the pack knows for its engine.

A positive model: ``engine-arguments`` names the flags known to be dangerous, this rule refuses (mandatory in
prod) every flag or setting outside the engine's allow-list, so the next dangerous flag is refused before
anyone has written it down. Names are read as the engine parses them (:mod:`policies.lib.engine_flags`):
vLLM ``--max_num_seqs=8`` is ``--max-num-seqs``; llama.cpp ``LLAMA_ARG_CTX_SIZE`` is ``--ctx-size``; Ollama's
settings are its ``OLLAMA_*`` variables.

The allow-lists live in the pack (``policies/lib/engine_flags.py``, each name cited from the engine's argument
definitions at the pinned version); a level adds names with ``extraFlags`` (``{"vllm": ["--max-loras"]}``)
in ``policies/config/<level>.json``, a change the policy owners review. A stack cannot extend it; a waiver
covers one flag on one server (``subjects: ["--enable-sleep-mode"]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.engine_flags import ENGINES, allowed, danger, engine_of, settings
from ...lib.finding import Finding
from ...lib.k8s import WORKLOAD_TYPES, containers, pod_template
from ...lib.rule import NSA, SLM, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    extra = config.get("extraFlags") or {}
    for container in containers(pod.spec, ("containers",)):
        engine = engine_of(container.body)
        if engine is None:
            continue
        for setting in settings(engine, container.body):
            if allowed(engine, setting.name, extra) or not setting.name.startswith(("-", "OLLAMA_")):
                continue
            what = danger(engine, setting)
            note = f" (dangerous: it {what})" if what else ""
            yield Finding(
                f"{container.label} ({engine}) sets {setting.written}, which is not on the {engine} allow-list{note}",
                subject=setting.name,
            )


RULE = Rule(
    id="SLM-SRV-003",
    name="engine-argument-allow-list",
    title="Model servers take only the flags and settings the pack knows for their engine",
    severity="high",
    rationale=(
        "Each engine has hundreds of flags and new ones arrive with every release; some run remote code, serve "
        "files or download models. A deny-list is always one flag behind: in prod only known flags pass."
    ),
    remediation=(
        "Remove the flag, or add it to extraFlags of engine-argument-allow-list in policies/config/<level>.json "
        "after review (or waive it for this server, naming the flag in subjects)."
    ),
    controls={NSA: ("Application security: secrets and code provenance",), SLM: ("Serving engine configuration",)},
    resource_types=WORKLOAD_TYPES,
    config={
        "extraFlags": {
            "type": "object",
            "properties": {engine: {"type": "array", "items": {"type": "string"}} for engine in ENGINES},
            "additionalProperties": False,
            "default": {},
            "description": "More flags (or Ollama variables) allowed per engine at this level, as the engine "
            "spells them after normalisation (vLLM and llama.cpp: `--long-name`).",
        }
    },
    check=check,
    subject="engine flag",
)
