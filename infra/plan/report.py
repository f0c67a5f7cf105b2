"""What people (rich tables and trees) and machines (JSON) read of a plan and a render."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from infra.plan.model import RecordedResource, redact
from infra.plan.schema import SchemaResult
from infra.plan.stack import StackPlan


def console() -> Any:
    """A rich console; wide when the output is a file or a CI log, so tables stay readable."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def _label(resource: RecordedResource) -> str:
    metadata = resource.inputs.get("metadata") if isinstance(resource.inputs.get("metadata"), dict) else {}
    where = ""
    if metadata:
        namespace = metadata.get("namespace")
        where = (
            f"  [dim]{namespace}/{metadata.get('name')}[/dim]" if namespace else f"  [dim]{metadata.get('name')}[/dim]"
        )
    flags = []
    if resource.protect:
        flags.append("[yellow]protected[/yellow]")
    if resource.placeholder_outputs:
        flags.append(f"[magenta]placeholder: {', '.join(resource.placeholder_outputs)}[/magenta]")
    suffix = f"  {' '.join(flags)}" if flags else ""
    return f"[bold]{resource.type}[/bold] {resource.name}{where}{suffix}"


def plan_json(plan: StackPlan) -> dict[str, Any]:
    resources = plan.run.resources
    return {
        "stack": plan.stack,
        "stackFile": str(plan.stack_file),
        "mode": "preview" if plan.run.preview else "update",
        "counts": dict(sorted(Counter(r.type for r in resources).items())),
        "invokes": [{"token": token, "placeholderResult": result} for token, result in plan.run.invokes],
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "custom": r.custom,
                "parent": r.parent,
                "provider": r.provider,
                "protect": r.protect,
                "dependsOn": list(r.dependencies),
                "placeholderOutputs": list(r.placeholder_outputs),
                "inputs": redact(r.inputs),
            }
            for r in sorted(resources, key=lambda r: r.urn)
        ],
    }


def print_plan(plan: StackPlan) -> None:
    from rich.table import Table
    from rich.tree import Tree

    out = console()
    resources = plan.run.resources
    by_parent: dict[str | None, list[RecordedResource]] = {}
    urns = {r.urn for r in resources}
    for resource in resources:
        parent = resource.parent if resource.parent in urns else None
        by_parent.setdefault(parent, []).append(resource)
    mode = "preview, outputs unknown" if plan.run.preview else "update, computed outputs are placeholders"
    tree = Tree(f"[bold]stack {plan.stack}[/bold] ({plan.stack_file}, {plan.config.environment}; {mode})")

    def grow(node: Tree, parent: str | None) -> None:
        for child in sorted(by_parent.get(parent, []), key=lambda r: (r.custom, r.type, r.name)):
            grow(node.add(_label(child)), child.urn)

    grow(tree, None)
    out.print(tree)
    table = Table(title="Resources by type")
    table.add_column("type")
    table.add_column("count", justify="right")
    counts = Counter(r.type for r in resources)
    for type_, count in sorted(counts.items()):
        table.add_row(type_, str(count))
    table.add_row("[bold]total[/bold]", f"[bold]{len(resources)}[/bold]")
    out.print(table)
    if plan.run.invokes:
        invokes = Table(title="Invokes, answered offline with [magenta]placeholders[/magenta] (no cloud was asked)")
        invokes.add_column("function")
        invokes.add_column("calls", justify="right")
        for token, count in sorted(Counter(token for token, _ in plan.run.invokes).items()):
            invokes.add_row(token, str(count))
        out.print(invokes)


def schema_json(checks: list[SchemaResult], out: Path) -> dict[str, Any]:
    return {
        "out": str(out),
        "objects": [{"path": c.path, "kind": c.kind, "status": c.status, "message": c.message} for c in checks],
        "counts": dict(sorted(Counter(c.status for c in checks).items())),
    }


def print_schema_results(checks: list[SchemaResult], out: Path, version: str) -> None:
    from rich.table import Table

    table = Table(title=f"Rendered to {out} — strict schema check, Kubernetes {version}")
    table.add_column("file")
    table.add_column("kind")
    table.add_column("schema")
    style = {"valid": "green", "invalid": "red", "not-checked": "yellow"}
    for check in checks:
        status = f"[{style[check.status]}]{check.status}[/{style[check.status]}]"
        table.add_row(check.path, check.kind, f"{status} {check.message}".strip())
    console().print(table)


def network_json(plan: StackPlan) -> dict[str, Any]:
    from infra.plan.network import allowed_flows, default_deny_namespaces

    return {
        "stack": plan.stack,
        "defaultDenyNamespaces": sorted(default_deny_namespaces(plan.run.resources)),
        "flows": [vars(flow) for flow in allowed_flows(plan.run.resources)],
    }


def print_network(plan: StackPlan) -> None:
    from rich.table import Table

    from infra.plan.network import allowed_flows, default_deny_namespaces

    denied = default_deny_namespaces(plan.run.resources)
    table = Table(title=f"Allowed network flows, stack {plan.stack} (everything else is denied)")
    for column in ("namespace", "direction", "from", "to", "port", "policy"):
        table.add_column(column)
    for flow in allowed_flows(plan.run.resources):
        table.add_row(flow.namespace, flow.direction, flow.source, flow.destination, flow.port, flow.policy)
    out = console()
    out.print(table)
    out.print(f"default-deny (ingress and egress): {', '.join(sorted(denied)) or 'none'}")
