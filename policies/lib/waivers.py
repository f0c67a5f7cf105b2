"""Waivers: read from stack config, applied by every rule, always visible.

Design
------
A waiver is an entry of the stack config key ``slm-deploy:waivers`` (a JSON list)::

    {"policy": "read-only-root-filesystem" | "SLM-K8S-009",
     "resource": "<logical name>" | "<URN>",
     "subjects": ["--max-loras", ...],      # what exactly it covers (see "Subjects" below)
     "values": ["grafana.grafana.ini.auth.proxy"],   # Helm value paths: subjects too
     "maxMonthlyUsd": 25000,                # monthly-budget only: covers up to this amount
     "reason": "...", "owner": "...", "expires": "YYYY-MM-DD"}

Subjects
--------
A waiver binds rule + resource + the finding's *subject*. Rules whose findings are about one thing (an
engine flag, a Helm value path, a label key, a CIDR, a host pattern) report each finding as a
:class:`policies.lib.finding.Finding` with that subject, shown in the report as ``[subject: X]``; such a
finding is waived only by a waiver that lists exactly ``X`` in ``subjects`` (or ``values``). A waiver
without subjects covers only findings that have none. A budget finding carries the amount: a
``monthly-budget`` waiver must state ``maxMonthlyUsd`` and covers an estimate up to that figure only.

The waivers are the stack's ``slm-deploy:waivers``, read through :mod:`policies.lib.stack_config`: under the
Pulumi CLI they arrive in the analyzer's ``ConfigureStack`` call, offline the driver sets them with
``pulumi.runtime.set_config``, so the real engine and ``slm-deploy check`` see the same waivers.

CrossGuard fixes the enforcement level per policy, so a rule cannot report one result as
advisory and another as mandatory. Waivers therefore work in three parts, none of them silent:

1. A rule whose violation is covered by an *active* waiver does not report it; it records the
   violation with the waiver in this module (a per-process list, guarded by a lock: the analyzer
   serves one update per process and may run calls on several threads).
2. The stack policy ``waived-results`` (always advisory, registered *last* so that it runs after
   every other stack policy) reports one advisory diagnostic per waived (policy, resource), with
   policy, resource, owner, expiry, reason and the waived violations, then clears the list.
   The Pulumi engine calls ``Analyze`` for every resource before ``AnalyzeStack``, so every
   waived resource result is recorded by then. Configuring ``waived-results`` to anything but
   ``advisory`` is refused by the offline driver (``disabled`` would hide waived results,
   ``mandatory`` would block on them); the environment config files pin it to advisory.
3. A waiver that has *expired* (``today >= expires``) does not apply: the rule reports its violation
   at the rule's own level, with a line saying when the waiver expired and whose it was.

Matching, the same for every use (this module is the one parser and matcher: the stack config's
checks, the checkov skip annotations of the render and the pack all call it):

- policy: the rule's name or its id, compared case-insensitively (``SLM-K8S-009`` = ``slm-k8s-009``);
- resource: the logical name or the URN, exactly (Pulumi names are case-sensitive); where no URN is
  known yet (the stack config's own checks), the name part of a URN waiver;
- expiry: ``expires`` is the first day on which the waiver no longer applies. A waiver with
  ``expires: 2026-03-01`` covers up to and including 2026-02-28.

Malformed waivers (not JSON, missing policy/resource/reason/owner/expires, bad date) and waivers
that name an unknown policy never apply; the stack policy ``waiver-validity`` reports each of them.

``today`` is the environment variable ``SLM_DEPLOY_TODAY``, else the stack config ``slm-deploy:today``
(both ``YYYY-MM-DD``), else the current date, so tests are deterministic.

Machine-readable lines: a waived result's message starts with ``waived: key=value ...`` and an
expired waiver adds ``waiver expired on DATE: key=value ...``; values are shell-quoted so that
:func:`shlex.split` reads them back (the offline driver does).
"""

from __future__ import annotations

import json
import os
import shlex
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from . import stack_config
from .finding import amount_of, named_by, shown

if TYPE_CHECKING:
    from pulumi_policy import ReportViolation

    from .rule import Rule

CONFIG_NAMESPACE = "slm-deploy"
WAIVERS_KEY = f"{CONFIG_NAMESPACE}:waivers"
ENVIRONMENT_KEY = f"{CONFIG_NAMESPACE}:environment"
TODAY_KEY = f"{CONFIG_NAMESPACE}:today"
TODAY_ENV = "SLM_DEPLOY_TODAY"
REQUIRED_FIELDS = ("policy", "resource", "reason", "owner", "expires")
#: Optional fields: lists of subjects (``values`` is the Helm spelling) and the budget ceiling.
SUBJECT_FIELDS = ("subjects", "values")
AMOUNT_FIELD = "maxMonthlyUsd"


@dataclass(frozen=True)
class Waiver:
    index: int
    policy: str
    resource: str
    reason: str
    owner: str
    expires: date
    #: The finding subjects it covers (flags, value paths, label keys, CIDRs, host patterns); empty: none named.
    subjects: tuple[str, ...] = ()
    #: For budget findings: the largest amount it covers.
    max_monthly_usd: float | None = None

    def names_policy(self, name: str, policy_id: str) -> bool:
        """Whether the waiver is for the policy called ``name`` with id ``policy_id`` (either, any case)."""
        return self.policy.casefold() in {name.casefold(), policy_id.casefold()}

    def names(self, rule: Rule) -> bool:
        return self.names_policy(rule.name, rule.id)

    @property
    def resource_name(self) -> str:
        """The waived resource's logical name: the waiver's resource, or the name part of its URN."""
        return self.resource.rsplit("::", 1)[-1] if self.resource.startswith("urn:pulumi:") else self.resource

    def names_resource(self, urn: str | None, name: str) -> bool:
        """Whether the waiver is for the resource with this logical name or URN.

        Before the program runs (stack config checks) no URN is known: a URN waiver then names the
        resource by its name part.
        """
        if not self.resource:
            return False
        if urn is None:
            return self.resource_name == name
        return self.resource in {name, urn}

    def covers(self, rule: Rule, urn: str | None, name: str) -> bool:
        return self.names(rule) and self.names_resource(urn, name)

    def covers_finding(self, message: str) -> bool:
        """Whether it covers this finding's subject: a finding with a subject needs a waiver naming it, one
        with an amount a ceiling at least that high; a finding with neither is covered by rule and resource."""
        amount = amount_of(message)
        if amount is not None:
            return self.max_monthly_usd is not None and amount <= self.max_monthly_usd
        return named_by(message, self.subjects)

    def coverage(self) -> str:
        """What it covers, as ``check`` shows it."""
        parts = [f"subjects {', '.join(self.subjects)}"] if self.subjects else []
        if self.max_monthly_usd is not None:
            parts.append(f"up to {self.max_monthly_usd:,.2f} a month")
        return "; ".join(parts) or "findings without a subject only"

    def active(self, today: date) -> bool:
        """In force on ``today``: ``expires`` is the first day it no longer applies."""
        return today < self.expires

    def fields(self) -> str:
        return (
            f"owner={shlex.quote(self.owner)} expires={self.expires.isoformat()} reason={shlex.quote(self.reason)} "
            f"covers={shlex.quote(self.coverage())}"
        )


@dataclass(frozen=True)
class AppliedWaiver:
    rule_id: str
    rule_name: str
    urn: str | None
    name: str
    waiver: Waiver
    messages: tuple[str, ...]


_LOCK = threading.Lock()
_APPLIED: list[AppliedWaiver] = []


def peek_applied() -> list[AppliedWaiver]:
    """The waived results recorded so far, left in place (``waiver-validity`` finds unused subjects)."""
    with _LOCK:
        return list(_APPLIED)


def reset() -> None:
    """Forget recorded waived results (the offline driver calls it before a run)."""
    with _LOCK:
        _APPLIED.clear()


def take_applied() -> list[AppliedWaiver]:
    """The waived results recorded since the last call, de-duplicated, in order."""
    with _LOCK:
        taken = list(_APPLIED)
        _APPLIED.clear()
    seen: set[tuple[str, str | None, str, int]] = set()
    result: list[AppliedWaiver] = []
    by_key: dict[tuple[str, str | None, str, int], int] = {}
    for applied in taken:
        key = (applied.rule_name, applied.urn, applied.name, applied.waiver.index)
        if key in seen:
            index = by_key[key]
            merged = tuple(dict.fromkeys((*result[index].messages, *applied.messages)))
            result[index] = AppliedWaiver(
                applied.rule_id, applied.rule_name, applied.urn, applied.name, applied.waiver, merged
            )
            continue
        seen.add(key)
        by_key[key] = len(result)
        result.append(applied)
    return result


def _config(key: str) -> Any:
    return stack_config.raw(key.removeprefix(f"{CONFIG_NAMESPACE}:"))


def environment() -> str:
    value = _config(ENVIRONMENT_KEY)
    return str(value) if value else "unknown"


def today() -> tuple[date, str | None]:
    """The date waivers expire against, and a problem with the override if it is not a date."""
    raw = os.environ.get(TODAY_ENV) or _config(TODAY_KEY)
    if not raw:
        return date.today(), None
    try:
        return date.fromisoformat(str(raw).strip()), None
    except ValueError:
        return date.today(), f"'{raw}' (from {TODAY_ENV} or {TODAY_KEY}) is not a YYYY-MM-DD date"


def parse(raw: Any) -> tuple[list[Waiver], list[str]]:
    """Waivers and problems from the raw config value (a JSON string or an already parsed list)."""
    if raw is None or raw == "":
        return [], []
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            return [], [f"{WAIVERS_KEY} is not valid JSON ({e.msg} at position {e.pos})"]
    if not isinstance(value, list):
        return [], [f"{WAIVERS_KEY} must be a JSON list of waivers, not {type(value).__name__}"]
    waivers: list[Waiver] = []
    problems: list[str] = []
    for index, entry in enumerate(value):
        where = f"waiver #{index + 1}"
        if not isinstance(entry, dict):
            problems.append(f"{where} is not an object")
            continue
        where = f"waiver #{index + 1} ({entry.get('policy', '?')} on {entry.get('resource', '?')})"
        # A stack file's YAML reader may already have made the date a date.
        entry = {**entry, "expires": _iso(entry.get("expires"))}
        missing = [k for k in REQUIRED_FIELDS if not isinstance(entry.get(k), str) or not entry[k].strip()]
        if missing:
            problems.append(f"{where} is not applied: missing or empty {', '.join(missing)}")
            continue
        try:
            expires = date.fromisoformat(entry["expires"].strip())
        except ValueError:
            problems.append(f"{where} is not applied: expires '{entry['expires']}' is not a YYYY-MM-DD date")
            continue
        subjects: list[str] = []
        bad = ""
        for key in SUBJECT_FIELDS:
            listed = entry.get(key, [])
            if not isinstance(listed, list) or not all(isinstance(s, str) and s.strip() for s in listed):
                bad = f"{key} must be a list of non-empty strings"
                break
            subjects.extend(s.strip() for s in listed)
        ceiling = entry.get(AMOUNT_FIELD)
        if not bad and ceiling is not None and (isinstance(ceiling, bool) or not isinstance(ceiling, int | float)):
            bad = f"{AMOUNT_FIELD} must be a number"
        if bad:
            problems.append(f"{where} is not applied: {bad}")
            continue
        waivers.append(
            Waiver(
                index=index,
                policy=entry["policy"].strip(),
                resource=entry["resource"].strip(),
                reason=" ".join(entry["reason"].split()),
                owner=" ".join(entry["owner"].split()),
                expires=expires,
                subjects=tuple(dict.fromkeys(subjects)),
                max_monthly_usd=None if ceiling is None else float(ceiling),
            )
        )
    return waivers, problems


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def active_for(
    waivers: Iterable[Waiver], name: str, policy_id: str, urn: str | None, resource: str, today: date
) -> list[Waiver]:
    """The waivers in force on ``today`` for one policy (by name and id) and one resource (by name and URN)."""
    return [
        w for w in waivers if w.names_policy(name, policy_id) and w.names_resource(urn, resource) and w.active(today)
    ]


def checkov_skip_annotations(
    waivers: Iterable[Waiver], checkov_ids: Mapping[tuple[str, str], Iterable[str]], today: date
) -> dict[str, dict[str, str]]:
    """checkov skip annotations (``checkov.io/skip<N>: <CHECK>=<reason>``) by waived resource (name or URN).

    ``checkov_ids`` maps each rule's ``(name, id)`` to the checkov checks it corresponds to. Only waivers
    in force on ``today`` skip anything, so checkov fails exactly where the policy pack does.
    """
    by_resource: dict[str, list[tuple[str, str]]] = {}
    for waiver in waivers:
        if not waiver.active(today):
            continue
        reason = " ".join(f"{waiver.reason} (owner {waiver.owner}, until {waiver.expires})".split())
        for (name, policy_id), checks in checkov_ids.items():
            if waiver.names_policy(name, policy_id):
                by_resource.setdefault(waiver.resource, []).extend((check, reason) for check in checks)
    return {
        resource: {f"checkov.io/skip{index}": f"{check}={reason}" for index, (check, reason) in enumerate(skips, 1)}
        for resource, skips in by_resource.items()
    }


def load() -> tuple[list[Waiver], list[str]]:
    return parse(_config(WAIVERS_KEY))


def handle_violations(
    rule: Rule,
    urn: str | None,
    name: str,
    messages: Iterable[str],
    report_violation: ReportViolation,
) -> None:
    """Report each of ``messages`` for one resource, or record it as waived by the waiver covering its subject."""
    waivers, _ = load()
    on_resource = [w for w in waivers if w.covers(rule, urn, name)]
    current, _problem = today()
    for message in messages:
        covering = [w for w in on_resource if w.covers_finding(message)]
        active = [w for w in covering if w.active(current)]
        if active:
            chosen = max(active, key=lambda w: w.expires)
            with _LOCK:
                _APPLIED.append(AppliedWaiver(rule.id, rule.name, urn, name, chosen, (shown(message),)))
            continue
        note = ""
        if covering:
            latest = max(covering, key=lambda w: w.expires)
            note = f"\nwaiver expired on {latest.expires.isoformat()}: {latest.fields()}"
        report_violation(shown(message) + note, urn)


def waived_message(applied: AppliedWaiver, env: str) -> str:
    w = applied.waiver
    head = (
        f"waived: policy={applied.rule_name} id={applied.rule_id} resource={shlex.quote(applied.name or '-')} "
        f"environment={shlex.quote(env)} {w.fields()}"
    )
    return "\n".join([head, *(f"- {m}" for m in applied.messages)])
