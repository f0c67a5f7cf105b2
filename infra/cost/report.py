"""The estimate as text, JSON and Markdown: totals at min and max scale, per model, per pool, every line."""

from __future__ import annotations

import json

from infra.cost.estimate import CostLine, Estimate


def money(value: float, currency: str) -> str:
    return f"{currency} {value:,.2f}"


def _range(low: float, high: float, currency: str) -> str:
    if round(low, 2) == round(high, 2):
        return money(low, currency)
    return f"{money(low, currency)} - {money(high, currency)}"


def _quantity(value: float) -> str:
    return f"{value:g}"


def _line_cost(line: CostLine, currency: str) -> str:
    return _range(line.monthly_min, line.monthly_max, currency) if line.priced else "not priced"


def _header(result: Estimate) -> list[str]:
    low, high = result.total
    where = result.region or "unknown region"
    return [
        f"stack {result.stack} ({'AKS cluster it creates' if result.mode == 'aks' else 'existing cluster'}), "
        f"region {where}, prices of {result.price_date} in {result.currency} "
        f"({result.hours_per_month:g} hours a month)",
        f"monthly total: {money(low, result.currency)} at min scale, {money(high, result.currency)} at max scale",
    ]


def render_json(result: Estimate) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True)


def render_text(result: Estimate) -> str:
    c = result.currency
    out = _header(result)
    out.append("")
    out.append("per model (min - max):")
    for model in result.models:
        out.append(f"  {model}: {_range(*result.model_total(model), c)}")
    pools = result.pool_totals()
    if pools:
        out.append("per pool (min - max):")
        out += [f"  {name}: {_range(low, high, c)}" for name, (low, high) in pools.items()]
    if result.mode == "existing":
        out.append("share of the cluster the pods request (min - max):")
        for r in result.requests:
            out.append(
                f"  {r.model}: {r.replicas[0]}-{r.replicas[1]} replicas, GPU {r.gpus[0]}-{r.gpus[1]}, "
                f"CPU {r.cpu[0]:g}-{r.cpu[1]:g}, memory {r.memory_gib[0]:g}-{r.memory_gib[1]:g} GiB"
            )
    out.append("lines:")
    for line in result.lines:
        owner = f" [{line.model}]" if line.model else f" [pool {line.pool}]" if line.pool else ""
        out.append(
            f"  {line.category:8} {line.item}{owner}: {_quantity(line.quantity_min)}-{_quantity(line.quantity_max)} "
            f"{line.unit} → {_line_cost(line, c)}"
        )
    if result.unpriced:
        out.append("not priced (no figure in the table; left out of the totals):")
        out += [f"  {x.item}: {x.source}" for x in result.unpriced]
    out.append(f"not included: {', '.join(result.not_included)}")
    out += [f"note: {note}" for note in result.notes]
    return "\n".join(out) + "\n"


def render_markdown(result: Estimate) -> str:
    c = result.currency
    low, high = result.total
    out = [
        f"### Monthly cost of `{result.stack}`",
        "",
        f"Region {result.region or 'unknown'}, prices of {result.price_date} in {c}.",
        "",
        "| | Min scale | Max scale |",
        "| --- | ---: | ---: |",
        f"| **Total** | {money(low, c)} | {money(high, c)} |",
    ]
    for model in result.models:
        low, high = result.model_total(model)
        out.append(f"| model `{model}` | {money(low, c)} | {money(high, c)} |")
    out += [f"| pool `{p}` | {money(a, c)} | {money(b, c)} |" for p, (a, b) in result.pool_totals().items()]
    if result.unpriced:
        out += ["", "Not priced (no figure in the table): " + ", ".join(f"`{x.item}`" for x in result.unpriced) + "."]
    out += ["", f"Not included: {', '.join(result.not_included)}."]
    return "\n".join(out) + "\n"
