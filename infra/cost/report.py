"""The estimate as text, JSON and Markdown: totals at min and max scale, per model, per pool, every line.

While anything billed has no figure, every total reads "at least" and the output lists what is missing.
"""

from __future__ import annotations

import json

from infra.cost.estimate import CostLine, Estimate
from infra.cost.tokens import TokenCost


def money(value: float, currency: str) -> str:
    return f"{currency} {value:,.2f}"


def bound(result: Estimate) -> str:
    """``"at least "`` while some item is not priced (the totals are then a lower bound), else nothing."""
    return "" if result.complete else "at least "


def _range(low: float, high: float, currency: str) -> str:
    if round(low, 2) == round(high, 2):
        return money(low, currency)
    return f"{money(low, currency)} - {money(high, currency)}"


def _quantity(value: float) -> str:
    return f"{value:g}"


def _line_cost(line: CostLine, currency: str) -> str:
    if not line.priced:
        return "not priced"
    cost = _range(line.monthly_min, line.monthly_max, currency)
    return f"{cost} (organisation price)" if line.origin == "organisation" else cost


def per_million(value: float | None, currency: str) -> str:
    return "not known" if value is None else f"{currency} {value:,.4g} per 1M output tokens"


def token_summary(cost: TokenCost, currency: str) -> str:
    """One line: full load and expected load, or why there is no figure."""
    if cost.full_load is None:
        return f"no figure ({cost.note or cost.source})"
    text = f"{per_million(cost.full_load, currency)} at full load ({cost.max_replicas} replicas"
    text += f" x {cost.tokens_per_second:g} tokens/s)"
    if cost.expected_load is not None:
        text += (
            f", {per_million(cost.expected_load, currency)} at the expected {cost.expected_tokens_per_second:g} "
            f"tokens/s ({cost.expected_replicas} replicas)"
        )
    return text


def _header(result: Estimate) -> list[str]:
    low, high = result.total
    where = result.region or "unknown region"
    at_least = bound(result)
    return [
        f"stack {result.stack} ({'AKS cluster it creates' if result.mode == 'aks' else 'existing cluster'}), "
        f"region {where}, prices of {result.price_date} in {result.currency} "
        f"({result.hours_per_month:g} hours a month)",
        f"monthly total: {at_least}{money(low, result.currency)} at min scale, "
        f"{at_least}{money(high, result.currency)} at max scale"
        + (f" ({len(result.unpriced)} item(s) not priced, listed below)" if at_least else ""),
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
    if result.token_costs:
        out.append("per million output tokens (the model's own nodes):")
        out += [f"  {cost.model}: {token_summary(cost, c)}" for cost in result.token_costs]
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
        out.append("not priced (no figure in the table; left out of the totals, which are a lower bound):")
        out += [f"  {x.item}: {x.reason}" for x in result.unpriced_items()]
    if result.sources:
        out.append("sources of the figures:")
        for name, spec in result.sources.items():
            where = " ".join(str(spec[key]) for key in ("repo", "path") if spec.get(key))
            commit = f" @ {str(spec['commit'])[:12]}" if spec.get("commit") else ""
            out.append(f"  {name}: {spec['title']} [{where}{commit}] dated {spec['dated']}, {spec['unit']}")
    if result.organisation_file:
        out.append(f"organisation prices: {result.organisation_file} (lines marked '(organisation price)')")
    out.append(f"not included: {', '.join(result.not_included)}")
    out += [f"note: {note}" for note in result.notes]
    return "\n".join(out) + "\n"


def render_markdown(result: Estimate) -> str:
    c = result.currency
    low, high = result.total
    at_least = bound(result)
    out = [
        f"### Monthly cost of `{result.stack}`",
        "",
        f"Region {result.region or 'unknown'}, prices of {result.price_date} in {c}"
        + (f"; organisation prices from `{result.organisation_file}`" if result.organisation_file else "")
        + ".",
        "",
        "| | Min scale | Max scale |",
        "| --- | ---: | ---: |",
        f"| **Total{' (at least)' if at_least else ''}** | {at_least}{money(low, c)} | {at_least}{money(high, c)} |",
    ]
    for model in result.models:
        low, high = result.model_total(model)
        out.append(f"| model `{model}` | {money(low, c)} | {money(high, c)} |")
    out += [f"| pool `{p}` | {money(a, c)} | {money(b, c)} |" for p, (a, b) in result.pool_totals().items()]
    if result.token_costs:
        out += ["", "| Model | Per 1M output tokens, full load | At expected load |", "| --- | ---: | ---: |"]
        for cost in result.token_costs:
            out.append(f"| `{cost.model}` | {per_million(cost.full_load, c)} | {per_million(cost.expected_load, c)} |")
    if result.unpriced:
        out += ["", "Not priced (the totals are a lower bound):", ""]
        out += [f"- `{x.item}`: {x.reason}" for x in result.unpriced_items()]
    out += ["", f"Not included: {', '.join(result.not_included)}."]
    return "\n".join(out) + "\n"
