"""Generate ``docs/policies.md``: every rule with id, severity, rationale, controls, checkov ids and
the enforcement level per environment (read from ``policies/config/<env>.json``), then the frameworks'
controls with the rules that claim them: every Pod Security Standards control (from
``policies/lib/pss.py``, covered or not) and the NSA/CISA and AKS baseline controls rules cite.

Regenerate with ``python -m infra.policy.catalogue > docs/policies.md``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .analyzer import DEFAULT_PACK_DIR, load_pack, reconciled_levels

ENVIRONMENTS = ("dev", "staging", "prod")
#: The positive model, extending an allow-list and waiver subjects (hand-written, copied into docs/policies.md).
POSITIVE_MODEL = (
    "## The gate admits what it knows",
    "",
    "In prod the pack works as an allow-list wherever a deny-list would always be one attack behind: it names "
    "what it knows to be safe and refuses the rest. Dev and staging run the same rules, advisory where their "
    "level files say so.",
    "",
    "| What | Allow-list (in the pack) | Rule |",
    "| --- | --- | --- |",
    "| Engine flags and settings | per engine, read as the engine parses them (vLLM `--a_b` = `--a-b`, "
    "`--flag=value` = `--flag value`; llama.cpp `LLAMA_ARG_*` variables; Ollama `OLLAMA_*`), each name cited from "
    "the engine's argument definitions at the pinned version: `policies/lib/engine_flags.py`; dangerous flags "
    "(remote code, local-file serving, model URLs, runtime LoRA, props, slot saving, origins `*`) are named at every "
    "level | `engine-argument-allow-list`, `engine-arguments` |",
    "| Images | repository paths (`docker.io/vllm/vllm-openai`), never a bare registry host | "
    "`allowed-image-registries` |",
    "| Stack labels | keys matching `allowedKeys`; keys Kubernetes or AKS own (`kubernetes.io/`, `k8s.io/`, "
    "`control-plane`, `admissions.enforcer/disabled`, `*.azure.com/`) are refused by `validate` | "
    "`stack-label-keys` |",
    "| Egress | public CIDRs on `allowedPublicCidrs`, measured with `ipaddress` (a set covering more than "
    "`maxPublicShare` of the public space is refused); host names and patterns at or below `allowedSuffixes` | "
    "`egress-scope` |",
    "| Raw Helm values | per chart, the value paths in `allowedPaths`; the dangerous classes (RBAC on Secrets, "
    "remote write/read off the cluster, ingresses, auth proxy and anonymous access, host namespaces) by rules of "
    "their own | `helm-raw-values`, `helm-dangerous-values`, `helm-grafana-authentication`, "
    "`helm-no-privileged-workloads` |",
    "| Cost | every billed item has a price in the table (categories the level lists); an unpriced item is a "
    'finding naming item and region, and totals read "at least" | `cost-unpriced`, `monthly-budget` |',
    "| Target | each level file lists the clusters it may target (`contexts`, `clusterIds`); a stack whose "
    "target a stricter level lists is judged there | `environment-binding` |",
    "| Direct callers of a model | a server that namespaces other than the gateway's reach "
    "(`network.ingressFromNamespaces`) checks API keys from a Secret (llama.cpp and ONNX: the clients' keys; vLLM: "
    "a key of the model's own in `VLLM_API_KEY`, which the entry point sends in place of the client's), or the "
    "stack states why not in the typed `directAccess.unauthenticatedReason` of the model (Ollama checks "
    "none); one finding per namespace let in, naming the model and the namespace | `model-servers-check-keys` |",
    "",
    "**Extending an allow-list** is a reviewed change to the pack's config, never to a stack file: add the name to "
    'the rule\'s property in `policies/config/<level>.json` (`"engine-argument-allow-list": {"extraFlags": '
    '{"vllm": ["--enable-sleep-mode"]}}`, `allowedRepositories`, `allowedKeys`, `allowedPublicCidrs`, '
    "`allowedSuffixes`, `allowedPaths`), or, for a name every level should know, to the pack's data with the "
    "source that defines it. Protect `policies/` with CODEOWNERS: a stack file can neither extend an allow-list "
    "nor choose its level.",
    "",
    "**A waiver covers exactly what it names**: rule + resource + the finding's *subject*. Findings about one "
    "thing carry it (the report prints `[subject: X]`): the engine flag, the Helm value path, the label key, the "
    "CIDR or host pattern, the image repository, the unpriced item, `api` or `chat-page` for the entry point's "
    "public IP, the namespace that reaches a model server checking no key. A waiver lists the subjects it covers "
    "(`subjects: [--enable-sleep-mode]`; Helm paths also as "
    "`values: [grafana.grafana.ini.auth.proxy]`, which covers that path and what is below it); a new finding "
    "of the same rule on the same resource is not waived. A `monthly-budget` waiver states `maxMonthlyUsd` and "
    "covers an estimate up to that figure only. `check` shows what each waiver covers (`covers ...` in every "
    "format); `waiver-validity` reports a waiver of a subject rule that names no subjects, a budget waiver "
    "without `maxMonthlyUsd`, and a waiver whose subjects cover no finding (stale, like one naming a resource "
    "that is gone).",
    "",
)
#: How a stack's level is chosen (hand-written: the generator copies it into docs/policies.md).
BINDING_PREAMBLE = (
    "## Which level judges a stack",
    "",
    "A stack's *name* picks its level file, never its stack file: each `policies/config/<level>.json` lists the "
    "stacks it binds in the `stacks` property of `environment-binding` (names, or glob patterns such as `dev-*`; "
    "a name wins over a pattern, and a stack bound by two files is an error), and a stack no file lists is "
    "judged at `prod`, the strictest level. The stack file's `slm-deploy:environment` is only a declaration: "
    "`environment-binding` (mandatory in every level file, never waivable) refuses the run when it differs from "
    "the bound level, so a prod stack that says `environment: dev` fails instead of passing on dev's advisory "
    "levels. Under the Pulumi CLI the same policy reads the stack's name from the URNs and refuses a level file "
    "that does not bind it (except `prod.json`, which judges unbound stacks).",
    "",
    "`slm-deploy check`, `slm-deploy diff` (its policy section), the pipelines `slm-deploy init-ci` writes and "
    "their `pulumi preview`/`up --policy-pack-config` all use the bound level; the pipelines' deployment "
    "environments (approvals) are the bound level too. The pack that judges is the installed one: a `policies/` "
    "folder under `--root` is ignored, and `check --policy-pack DIR` (said on stderr and in the reports) is the "
    "only way to judge with another. `slm-deploy diff` against a git ref also reports, as a mandatory "
    "`environment-binding` violation, a change that moves the stack to a weaker level than at that ref. Moving "
    "a stack between levels is an edit of `policies/config/`, which touches every stack and belongs to the "
    "policy owners (protect the folder with CODEOWNERS).",
    "",
    "The level is bound to the target as well as the name: `environment-binding`'s `contexts` (kubeconfig "
    "contexts) and `clusterIds` (AKS cluster resource ids, case-insensitive; globs allowed) list the clusters a "
    "level owns. A stack whose target a stricter level lists is judged at that level, so the dev stack pointed "
    "at the prod cluster's context must declare `prod` and pass prod's rules. `render` writes the target "
    "(`_stack/target.yaml`: context, or subscription, resource group and cluster name), so `diff` shows a change "
    "of target as a change (exit 1) in every format.",
    "",
    "## Rules",
    "",
)
#: A control id at the start of a citation, as the Microsoft cloud security benchmark numbers them.
_CONTROL_ID = re.compile(r"[A-Z]{2,3}-\d+")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rule_refs(rules: Sequence[Any]) -> str:
    return ", ".join(f"{r.id} `{r.name}`" for r in rules) or "**none**"


def _pss_section(rules: Sequence[Any]) -> list[str]:
    """One row per control of the standard (covered or not), then the pack's other citations of it."""
    pss = importlib.import_module("policies.lib.pss")
    lines = [
        "## Pod Security Standards → rule ids",
        "",
        f"Every control of the baseline and restricted profiles as the [Pod Security Standards]({pss.SOURCE_URL}) "
        f"list them for Kubernetes {pss.KUBERNETES_VERSION} (kept in `policies/lib/pss.py`; a test fails when a "
        "control has no rule). The restricted profile includes every baseline control.",
        "",
        "| Profile | Control | Restricted fields | Rules |",
        "| --- | --- | --- | --- |",
    ]
    for control, citing in pss.rules_by_control(rules).items():
        name = f"{control.name} ({control.since}+)" if control.since else control.name
        lines.append(f"| {control.profile} | {_cell(name)} | {_cell(control.fields)} | {_rule_refs(citing)} |")
    others = pss.other_refs(rules)
    if others:
        lines += ["", "Other references to the standard:", ""]
        lines += [f"- {_cell(ref)}: {_rule_refs(citing)}" for ref, citing in others.items()]
    lines.append("")
    return lines


def _control_key(ref: str) -> str:
    """The control a citation names: its id (``NS-1``) where it starts with one, else the whole text."""
    head, sep, _ = ref.partition(":")
    return head if sep and _CONTROL_ID.fullmatch(head) else ref


def _framework_section(framework: str, rules: Sequence[Any]) -> list[str]:
    """The controls of ``framework`` that rules claim, each with the rules that claim it (citations of one
    control id with different wordings are grouped)."""
    wordings: dict[str, list[str]] = {}
    by_control: dict[str, list[Any]] = {}
    for rule in rules:
        for ref in rule.controls.get(framework, ()):
            key = _control_key(ref)
            if ref not in wordings.setdefault(key, []):
                wordings[key].append(ref)
            if rule not in by_control.setdefault(key, []):
                by_control[key].append(rule)
    lines = [
        f"## {framework} → rule ids",
        "",
        "The controls the pack's rules claim (only those; the framework has others).",
        "",
        "| Control | Rules |",
        "| --- | --- |",
    ]
    for key in sorted(by_control):
        lines.append(f"| {_cell(' / '.join(wordings[key]))} | {_rule_refs(by_control[key])} |")
    lines.append("")
    return lines


def render_catalogue(pack_dir: Path | None = None) -> str:
    directory = pack_dir or DEFAULT_PACK_DIR
    pack = load_pack(directory)
    levels = {env: reconciled_levels(directory / "config" / f"{env}.json", directory) for env in ENVIRONMENTS}
    lines = [
        "# Policies",
        "",
        "<!-- Generated by `python -m infra.policy.catalogue > docs/policies.md`; do not edit by hand. -->",
        "",
        f"The CrossGuard policy pack `{pack.PACK_NAME}` (v{pack.PACK_VERSION}) in `policies/` holds one rule per "
        "folder under `policies/rules/`, with pass and fail fixtures beside it. Levels per environment come "
        "from `policies/config/<env>.json` (the `--policy-pack-config` files). Waivers live in stack config "
        "(`slm-deploy:waivers`) and are reported by `waived-results`; see `policies/lib/waivers.py`.",
        "",
        *POSITIVE_MODEL,
        *BINDING_PREAMBLE,
        "| Id | Policy | Title | Severity | " + " | ".join(ENVIRONMENTS) + " | checkov |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in ENVIRONMENTS) + " | --- |",
    ]
    for rule in pack.RULES:
        env_levels = " | ".join(levels[env][rule.name].enforcement_level for env in ENVIRONMENTS)
        checkov = ", ".join(rule.checkov) or "-"
        lines.append(
            f"| {rule.id} | `{rule.name}` | {_cell(rule.title)} | {rule.severity} | {env_levels} | {checkov} |"
        )
    lines.append("")
    for rule in pack.RULES:
        lines += [
            f"## {rule.id} `{rule.name}`",
            "",
            f"**{_cell(rule.title)}** — severity {rule.severity}, {rule.kind} policy, folder "
            f"`policies/rules/{pack.RULE_FOLDERS[rule.name]}/`.",
            "",
            f"- Rationale: {_cell(rule.rationale)}",
            f"- Remediation: {_cell(rule.remediation)}",
        ]
        for framework, refs in rule.controls.items():
            lines.append(f"- {framework}: {'; '.join(refs)}")
        if rule.checkov:
            lines.append(f"- checkov: {', '.join(rule.checkov)}")
        if rule.resource_types:
            lines.append(f"- Resource types: {', '.join(f'`{t}`' for t in sorted(rule.resource_types))}")
        for env in ENVIRONMENTS:
            reconciled = levels[env][rule.name]
            config = ", ".join(f"`{k}={v}`" for k, v in sorted(reconciled.properties.items()))
            lines.append(f"- {env}: {reconciled.enforcement_level}" + (f" ({config})" if config else ""))
        lines.append("")
    lines += _pss_section(pack.RULES)
    rule_module = importlib.import_module("policies.lib.rule")
    for framework in (rule_module.NSA, rule_module.AKS):
        if any(rule.controls.get(framework) for rule in pack.RULES):
            lines += _framework_section(framework, pack.RULES)
    return "\n".join(lines)


def main() -> None:
    print(render_catalogue(), end="")


if __name__ == "__main__":
    main()
