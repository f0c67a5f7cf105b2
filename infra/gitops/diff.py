"""``slm-deploy diff``: what a change does to a stack's Kubernetes objects.

The stack is rendered now (the code that runs this, the stack file under ``root``) and at a base: a
directory written earlier by ``slm-deploy render`` (it carries the ``.slm-deploy-render`` marker) or a
git ref of the repository, rendered by *that revision's own code* in a temporary ``git worktree``.
Objects are matched by their render path (``<namespace>/<kind>[.<group>]--<name>.yaml``) and compared
with DeepDiff; named list items (containers, env, volumes, ports …) are matched by ``name``, so an
insertion does not show as a change of every later item.

Secret values never appear: renders are redacted at the source, and every Secret's ``data`` and
``stringData`` values are forced to ``[secret]`` again on both sides before comparing (a hand-edited
base directory cannot leak a value into a PR comment).

Exit status of :func:`diff_command`: ``0`` no changes, ``1`` changes, ``2`` error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from infra.files import write_atomically
from infra.plan.render import MARKER, redact_secret_data

if TYPE_CHECKING:
    from infra.cost.delta import CostDelta
    from infra.plan.stack import StackPlan
    from infra.policy.model import PolicyReport

#: GitHub refuses comments longer than 65,536 characters; stay below with room for a marker line.
MARKDOWN_LIMIT = 65_000
#: How long rendering the base revision may take.
BASE_RENDER_TIMEOUT_S = 600
_VALUE_WIDTH = 160

Status = Literal["added", "removed", "changed"]
FieldKind = Literal["changed", "added", "removed", "type-changed"]


class DiffError(Exception):
    """The base cannot be rendered or read. ``str()`` is the one line a user needs."""


@dataclass(frozen=True)
class FieldChange:
    """One field of a changed object: its path (``spec.template.spec.containers[name=vllm].image``)."""

    path: str
    kind: FieldKind
    old: Any = None
    new: Any = None

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.kind != "added":
            entry["old"] = self.old
        if self.kind != "removed":
            entry["new"] = self.new
        return entry


@dataclass(frozen=True)
class ObjectChange:
    """One Kubernetes object added, removed or changed, keyed by its render path."""

    path: str
    status: Status
    kind: str
    name: str
    namespace: str | None
    fields: tuple[FieldChange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "path": self.path,
            "status": self.status,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
        }
        if self.status == "changed":
            entry["fields"] = [f.to_dict() for f in self.fields]
        return entry


@dataclass
class DiffResult:
    """The comparison of a stack's render now with its render at ``base``."""

    stack: str
    base: str
    base_kind: Literal["render", "git"]
    changes: list[ObjectChange]
    unchanged: int
    notes: list[str] = field(default_factory=list)
    policy: PolicyReport | None = None
    cost: CostDelta | None = None

    def _with(self, status: Status) -> list[ObjectChange]:
        return [c for c in self.changes if c.status == status]

    @property
    def added(self) -> list[ObjectChange]:
        return self._with("added")

    @property
    def removed(self) -> list[ObjectChange]:
        return self._with("removed")

    @property
    def changed(self) -> list[ObjectChange]:
        return self._with("changed")

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged"
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stack": self.stack,
            "base": self.base,
            "baseKind": self.base_kind,
            "summary": {
                "added": len(self.added),
                "changed": len(self.changed),
                "removed": len(self.removed),
                "unchanged": self.unchanged,
            },
            "changes": [c.to_dict() for c in self.changes],
            "notes": list(self.notes),
        }
        if self.policy is not None:
            data["policy"] = {
                "ok": self.policy.ok,
                "mandatoryViolations": self.policy.mandatory_violations,
                "advisoryViolations": self.policy.advisory_violations,
                "waived": len(self.policy.waived),
            }
        if self.cost is not None:
            data["cost"] = self.cost.to_dict()
        return data


# --------------------------------------------------------------------------- reading renders


def _yaml_load(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def load_render(directory: Path) -> dict[str, dict[str, Any]]:
    """Every object of a render directory, keyed by its path relative to the directory."""
    if not directory.is_dir():
        raise DiffError(f"{directory}: not a directory")
    if not (directory / MARKER).exists():
        raise DiffError(f"{directory} is not a render of slm-deploy (no {MARKER} file)")
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*.yaml")):
        relative = path.relative_to(directory).as_posix()
        try:
            document = _yaml_load(path.read_text(encoding="utf-8"))
        except Exception as error:  # ruamel raises many types; all mean "not a manifest"
            raise DiffError(f"{path}: not valid YAML ({type(error).__name__})") from None
        if not isinstance(document, dict):
            raise DiffError(f"{path}: not a Kubernetes object")
        objects[relative] = redact_secret_data(document)
    return objects


def current_render(root: Path, stack: str) -> tuple[StackPlan, dict[str, dict[str, Any]]]:
    """Render ``stack`` now, exactly as ``slm-deploy render`` writes it (checkov skips included)."""
    from infra.plan.render import stack_manifests, to_yaml
    from infra.plan.stack import plan_stack

    plan = plan_stack(stack, root, preview=False)
    # Through YAML and back, so both sides hold the same plain types as a render directory.
    objects = {m.path: redact_secret_data(_yaml_load(to_yaml(m.document))) for m in stack_manifests(plan)}
    return plan, objects


def _git(cwd: Path, *args: str, timeout: float = 120) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise DiffError("git is not installed: a git ref as --base needs it") from None
    except subprocess.TimeoutExpired:
        raise DiffError(f"git {args[0]} took longer than {timeout:.0f}s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise DiffError(f"git {args[0]}: {last}")
    return done.stdout.strip()


def render_git_ref(root: Path, stack: str, ref: str) -> dict[str, dict[str, Any]] | None:
    """Render ``stack`` at ``ref`` with that revision's own code, in a temporary worktree.

    Returns ``None`` when the stack file does not exist at ``ref`` (a stack new in this change).
    The worktree is removed afterwards, on errors too.
    """
    root = root.resolve()
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel")).resolve()
    except DiffError:
        raise DiffError(f"--base {ref!r} is neither a render directory nor a git ref ({root} is not in git)") from None
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except DiffError:
        raise DiffError(f"--base {ref!r} is neither a render directory nor a git ref of {top.name}") from None
    scratch = Path(tempfile.mkdtemp(prefix="slm-deploy-diff-"))
    tree = scratch / "tree"
    added = False
    try:
        _git(top, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        added = True
        project = tree / root.relative_to(top)
        stack_path = project / "stacks" / f"Pulumi.{stack}.yaml"
        if not stack_path.exists():
            return None
        out = scratch / "render"
        # The base's code, not ours: its project directory first on the path, nothing inherited.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(project)
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "infra.cli",
                    "render",
                    "--stack",
                    stack,
                    "--out",
                    str(out),
                    "--root",
                    str(project),
                    "--format",
                    "json",
                ],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=BASE_RENDER_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DiffError(f"rendering {stack} at {ref} took longer than {BASE_RENDER_TIMEOUT_S}s") from None
        # Exit 1 means "rendered, but a manifest failed its schema check": still a render to compare.
        if done.returncode not in (0, 1) or not (out / MARKER).exists():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise DiffError(f"rendering {stack} at {ref} failed: {reason}")
        return load_render(out)
    finally:
        if added:
            with contextlib.suppress(DiffError):
                _git(top, "worktree", "remove", "--force", str(tree))
            with contextlib.suppress(DiffError):
                _git(top, "worktree", "prune")
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------- comparing


def _named(value: Any) -> str | None:
    if isinstance(value, dict):
        name = value.get("name")
        if isinstance(name, str):
            return name
    return None


def _same_named_item(first: Any, second: Any, level: Any = None) -> bool:
    """DeepDiff's ``iterable_compare_func``: list items with a ``name`` are the same item by name."""
    from deepdiff.helper import CannotCompare

    a, b = _named(first), _named(second)
    if a is None or b is None:
        raise CannotCompare() from None
    return a == b


def _format_path(parts: list[Any], document: Any) -> str:
    """``['spec', 'containers', 0, 'image']`` → ``spec.containers[name=vllm].image`` (walking ``document``)."""
    text = ""
    node = document
    for part in parts:
        if isinstance(part, int):
            name = _named(node[part]) if isinstance(node, list) and 0 <= part < len(node) else None
            text += f"[name={name}]" if name is not None else f"[{part}]"
        else:
            key = str(part)
            plain = key.replace("-", "").replace("_", "").isalnum()
            text += (f".{key}" if text else key) if plain else f"[{json.dumps(key)}]"
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return text or "(root)"


_KINDS: dict[str, FieldKind] = {
    "values_changed": "changed",
    "type_changes": "type-changed",
    "dictionary_item_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_added": "added",
    "iterable_item_removed": "removed",
    "attribute_added": "added",
    "attribute_removed": "removed",
}


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    """Field-level changes between two versions of one object (DeepDiff, named list items by name)."""
    from deepdiff import DeepDiff

    tree = DeepDiff(old, new, view="tree", iterable_compare_func=_same_named_item, verbose_level=2)
    found: list[FieldChange] = []
    for report, levels in tree.items():
        kind = _KINDS.get(report)
        if kind is None:  # pure moves of named items: order of env/ports does not change behaviour
            continue
        for level in levels:
            if kind == "removed":
                path = _format_path(level.path(output_format="list"), old)
            else:
                path = _format_path(level.path(output_format="list", use_t2=True), new)
            found.append(
                FieldChange(
                    path=path,
                    kind=kind,
                    old=None if kind == "added" else level.t1,
                    new=None if kind == "removed" else level.t2,
                )
            )
    found.sort(key=lambda c: c.path)
    return found


def _identity(path: str, document: dict[str, Any]) -> tuple[str, str, str | None]:
    metadata = document.get("metadata") or {}
    namespace = metadata.get("namespace")
    return str(document.get("kind", "?")), str(metadata.get("name", path)), namespace if namespace else None


def compare(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> tuple[list[ObjectChange], int]:
    """Objects added, removed and changed between two renders (by path), and how many are unchanged."""
    changes: list[ObjectChange] = []
    unchanged = 0
    for path in sorted(set(old) | set(new)):
        if path not in old:
            changes.append(ObjectChange(path, "added", *_identity(path, new[path])))
        elif path not in new:
            changes.append(ObjectChange(path, "removed", *_identity(path, old[path])))
        elif old[path] == new[path]:
            unchanged += 1
        else:
            fields = tuple(field_changes(old[path], new[path]))
            changes.append(ObjectChange(path, "changed", *_identity(path, new[path]), fields=fields))
    return changes, unchanged


def _policy_report(plan: StackPlan) -> PolicyReport:
    """The policy pack on the new render's plan, as ``slm-deploy check`` runs it: the installed pack
    (never a ``policies/`` folder of the project being diffed) at the level the stack's name is bound to."""
    from infra.policy.analyzer import DEFAULT_PACK_DIR, run_policy_pack
    from infra.policy.pack_config import judge_stack

    return judge_stack(plan, DEFAULT_PACK_DIR, run_policy_pack)


def diff_stack(root: Path, stack: str, base: str, with_policy: bool = False) -> DiffResult:
    """Render ``stack`` now and at ``base`` (a render directory or a git ref) and compare them.

    Raises :class:`DiffError` for an unusable base, ``StackConfigError`` for a bad stack file now,
    ``PolicyConfigError`` for a bad policy config (``with_policy`` only).
    """
    notes: list[str] = []
    base_path = Path(base)
    old: dict[str, dict[str, Any]]
    kind: Literal["render", "git"]
    if base_path.is_dir() and ((base_path / MARKER).exists() or not _is_git_ref(root, base)):
        kind = "render"
        old = load_render(base_path)  # without the marker: a clear error, never a guess
    else:
        kind = "git"
        rendered = render_git_ref(root, stack, base)
        if rendered is None:
            notes.append(f"stacks/Pulumi.{stack}.yaml does not exist at {base}: every object is new")
            rendered = {}
        old = rendered
    plan, new = current_render(root, stack)
    changes, unchanged = compare(old, new)
    result = DiffResult(stack=stack, base=base, base_kind=kind, changes=changes, unchanged=unchanged, notes=notes)
    result.cost = _cost_delta(plan, old, new)
    if with_policy:
        result.policy = _policy_report(plan)
        if kind == "git":
            _judge_rebinding(result, root, base)
    return result


def _cost_delta(plan: StackPlan, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> CostDelta:
    """Both renders priced alike: the same table, and today's cost basis of an existing cluster for both."""
    from infra.cost.delta import CostDelta
    from infra.cost.stack import estimate_plan

    return CostDelta(estimate_plan(plan, old.values()), estimate_plan(plan, new.values()))


def base_level(root: Path, stack: str, ref: str, config_dir: Path) -> str | None:
    """The level ``stack`` was bound to at git ``ref``, read from ``config_dir``'s level files as they
    were at ``ref``; ``None`` when ``config_dir`` is not in ``root``'s repository or holds no level
    files there (nothing to compare with)."""
    from infra.policy.pack_config import PolicyConfigError, bind_level, bound_stacks, level_files, read_config_file

    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel")).resolve()
        folder = config_dir.resolve().relative_to(top).as_posix()
        names = _git(top, "ls-tree", "--name-only", f"{ref}^{{commit}}", f"{folder}/").splitlines()
    except (DiffError, ValueError):
        return None
    files = [name for name in names if name.endswith(".json")]
    if not files:
        return None
    with tempfile.TemporaryDirectory(prefix="slm-deploy-levels-") as scratch:
        for name in files:
            (Path(scratch) / Path(name).name).write_text(_git(top, "show", f"{ref}:{name}"), encoding="utf-8")
        try:
            if not any(bound_stacks(read_config_file(path), str(path)) for path in level_files(Path(scratch)).values()):
                return None  # no binding at all there yet: stack files chose their levels
            return bind_level(stack, Path(scratch)).level
        except PolicyConfigError:
            return None


def _judge_rebinding(result: DiffResult, root: Path, ref: str, config_dir: Path | None = None) -> None:
    """A change that moves the stack to a weaker level than at ``ref`` is a mandatory violation of
    ``environment-binding`` in the PR comment (and any change of its level is a note)."""
    from infra.policy.analyzer import DEFAULT_PACK_DIR
    from infra.policy.model import PolicyResult
    from infra.policy.pack_config import BINDING_POLICY, LEVEL_ORDER

    report = result.policy
    if report is None or report.level is None:
        return
    before = base_level(root, result.stack, ref, config_dir or DEFAULT_PACK_DIR / "config")
    if before is None or before == report.level:
        return
    order = {level: index for index, level in enumerate(LEVEL_ORDER)}
    weaker = order.get(report.level, len(order)) < order.get(before, len(order))
    message = f"this change moves stack {result.stack} from level {before} (at {ref}) to level {report.level}"
    if weaker:
        message += ", a weaker one: the move needs its own change, reviewed by the policy owners"
    result.notes.append(message)
    if weaker:
        info = report.policy(BINDING_POLICY)
        report.results.append(
            PolicyResult(
                policy_name=BINDING_POLICY,
                rule_id=info.rule_id if info else "",
                title=info.title if info else BINDING_POLICY,
                severity=info.severity if info else "critical",
                enforcement_level="mandatory",
                status="violation",
                message=message,
                stack=result.stack,
            )
        )


def _is_git_ref(root: Path, ref: str) -> bool:
    try:
        _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except DiffError:
        return False
    return True


# --------------------------------------------------------------------------- reports


def _short(value: Any, width: int = _VALUE_WIDTH) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_json(result: DiffResult) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=False, default=str) + "\n"


def render_text(result: DiffResult, width: int = 140) -> str:
    """A rich table for terminals and logs (returned as text, no colour codes)."""
    from io import StringIO

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buffer = StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    console.print(escape(f"Stack {result.stack}: now vs {result.base} ({result.base_kind})"))
    for note in result.notes:
        console.print(escape(f"note: {note}"))
    if result.changes:
        table = Table(show_lines=True)
        for column in ("Status", "Object", "Field", "Before", "After"):
            table.add_column(column, overflow="fold")
        for change in result.changes:
            label = escape(f"{change.kind} {change.namespace + '/' if change.namespace else ''}{change.name}")
            if change.status != "changed" or not change.fields:
                table.add_row(change.status, label, "", "", "")
                continue
            for index, item in enumerate(change.fields):
                table.add_row(
                    change.status if index == 0 else "",
                    label if index == 0 else "",
                    escape(item.path),
                    escape(_short(item.old)) if item.kind != "added" else "",
                    escape(_short(item.new)) if item.kind != "removed" else "",
                )
        console.print(table)
    console.print(result.summary())
    if result.cost is not None:
        from infra.cost.delta import render_text as cost_text

        console.print(escape(cost_text(result.cost)))
    return buffer.getvalue()


def _text(value: Any) -> str:
    from infra.policy.reports import escape_markdown

    return escape_markdown(value)


def _code(value: Any) -> str:
    from infra.policy.reports import escape_markdown

    return escape_markdown(value, "code")


def _object_label(change: ObjectChange) -> str:
    where = f"{change.namespace}/" if change.namespace else ""
    return f"{_code(change.kind)} {_text(where + change.name)}"


def _html_label(change: ObjectChange) -> str:
    """The object inside ``<summary>`` (an HTML block: Markdown is not parsed there)."""
    from infra.policy.reports import escape_markdown

    where = f"{change.namespace}/" if change.namespace else ""
    return f"<code>{escape_markdown(change.kind, 'html')}</code> {escape_markdown(where + change.name, 'html')}"


def render_markdown(result: DiffResult, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: counts, the objects with their field changes, then the policy results.

    Never longer than ``limit`` characters: when it would be, the policy section gets what is left
    (at least a quarter of the limit), then resources are dropped from the end and a note says how
    many are not shown.
    """
    from infra.policy import reports

    icon = ":white_check_mark:" if not result.has_changes else ":pencil2:"
    head = [
        f"## {icon} {_code(result.stack)}: {result.summary()}",
        "",
        f"Compared with {_code(result.base)} ({'an earlier render' if result.base_kind == 'render' else 'git'}).",
        "",
    ]
    head.extend(f"> {_text(note)}" for note in result.notes)
    if result.notes:
        head.append("")
    blocks: list[str] = []
    if result.added or result.removed:
        rows = ["| Status | Object | File |", "| --- | --- | --- |"]
        rows += [f"| {c.status} | {_object_label(c)} | {_code(c.path)} |" for c in result.added + result.removed]
        blocks.append("### Added and removed\n\n" + "\n".join(rows) + "\n")
    for change in result.changed:
        rows = ["| Field | Change | Before | After |", "| --- | --- | --- | --- |"]
        for item in change.fields:
            before = _code(_short(item.old)) if item.kind != "added" else ""
            after = _code(_short(item.new)) if item.kind != "removed" else ""
            rows.append(f"| {_code(item.path)} | {item.kind} | {before} | {after} |")
        blocks.append(
            f"<details><summary>changed {_html_label(change)} ({len(change.fields)} field(s))</summary>\n\n"
            + "\n".join(rows)
            + "\n\n</details>\n"
        )
    if result.cost is not None:
        from infra.cost.delta import render_markdown as cost_markdown

        head += [cost_markdown(result.cost), ""]
    policy = ""
    if result.policy is not None:
        policy_budget = max(limit // 4, limit - len("\n".join(head)) - sum(len(b) + 1 for b in blocks) - 400)
        policy = reports.render_markdown(result.policy, limit=min(policy_budget, reports.MARKDOWN_LIMIT))
    text = "\n".join(head)
    total = len(blocks)
    command = _code(f"slm-deploy diff --stack {result.stack}")

    def note(shown: int) -> str:
        return (
            f"\n> **Truncated:** {shown} of {total} resource section(s) shown; the comment is limited to "
            f"{limit} characters. Run {command} for everything.\n"
        )

    reserve = len(note(total)) + len(policy) + 2
    body = ""
    for shown, block in enumerate(blocks):
        if len(text) + len(body) + len(block) + 1 + reserve > limit:
            body += note(shown)
            break
        body += block + "\n"
    text = text + body + ("\n" + policy if policy else "")
    if len(text) > limit:  # only if the head alone is enormous (thousands of notes): cut, say so
        text = reports.truncate_markdown(text, limit, "\n> **Truncated** at the comment limit.\n")
    return text


# --------------------------------------------------------------------------- command


def diff_command(root: Path, stack: str, base: str, output_format: str, output: Path | None) -> int:
    """The ``slm-deploy diff`` command: 0 no changes, 1 changes, 2 error (one line on stderr).

    ``output_format`` is ``text``, ``json`` or ``markdown`` (markdown adds the policy results of
    the new render); ``output`` writes the report to a file instead of standard output.
    """
    from infra.config.loader import StackConfigError
    from infra.plan.render import RenderError
    from infra.policy.pack_config import PolicyConfigError

    renderers = {"text": render_text, "json": render_json, "markdown": render_markdown}
    if output_format not in renderers:
        print(f"error: unknown format {output_format!r} (expected text, json or markdown)", file=sys.stderr)
        return 2
    try:
        result = diff_stack(root, stack, base, with_policy=output_format == "markdown")
    except (DiffError, StackConfigError, RenderError, PolicyConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = renderers[output_format](result)
    if output is not None:
        try:
            write_atomically(output, text)
        except OSError as error:
            print(f"error: {output}: {error.strerror}", file=sys.stderr)
            return 2
        print(f"{output}: {result.summary()}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 1 if result.has_changes else 0
