"""What a change does to the monthly cost: the estimate before and after, at min and max scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.cost.estimate import Estimate
from infra.cost.report import bound, money, per_million


@dataclass(frozen=True)
class CostDelta:
    before: Estimate
    after: Estimate

    def rows(self) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
        """(label, before (min, max), after (min, max)) for the total, each model and each pool."""
        out = [("total", self.before.total, self.after.total)]
        for model in dict.fromkeys((*self.before.models, *self.after.models)):
            out.append((f"model {model}", self.before.model_total(model), self.after.model_total(model)))
        pools_before, pools_after = self.before.pool_totals(), self.after.pool_totals()
        for pool in dict.fromkeys((*pools_before, *pools_after)):
            out.append((f"pool {pool}", pools_before.get(pool, (0.0, 0.0)), pools_after.get(pool, (0.0, 0.0))))
        return out

    @property
    def changed(self) -> bool:
        return any(_cents(b) != _cents(a) for _, b, a in self.rows())

    def to_dict(self) -> dict[str, Any]:
        def pair(values: tuple[float, float]) -> dict[str, float]:
            return {"min": round(values[0], 2), "max": round(values[1], 2)}

        return {
            "currency": self.after.currency,
            "priceDate": self.after.price_date,
            "region": self.after.region,
            "changed": self.changed,
            "rows": [
                {
                    "item": label,
                    "before": pair(before),
                    "after": pair(after),
                    "delta": pair((after[0] - before[0], after[1] - before[1])),
                }
                for label, before, after in self.rows()
            ],
            "unpriced": sorted({x.item for x in self.after.unpriced}),
            "complete": {"before": self.before.complete, "after": self.after.complete},
            "tokenCosts": self.token_rows(),
        }

    def token_rows(self) -> list[dict[str, Any]]:
        """USD per 1M output tokens before and after, per model (full load and expected load)."""
        rows = []
        for model in dict.fromkeys((*self.before.models, *self.after.models)):
            old, new = self.before.token_cost(model), self.after.token_cost(model)
            if old is None and new is None:
                continue
            rows.append(
                {
                    "model": model,
                    "before": _tokens(old),
                    "after": _tokens(new),
                }
            )
        return rows


def _tokens(cost: Any) -> dict[str, float | None]:
    if cost is None:
        return {"fullLoad": None, "expectedLoad": None}
    return {
        "fullLoad": None if cost.full_load is None else round(cost.full_load, 4),
        "expectedLoad": None if cost.expected_load is None else round(cost.expected_load, 4),
    }


def _cents(values: tuple[float, float]) -> tuple[int, int]:
    return (round(values[0] * 100), round(values[1] * 100))


def _signed(value: float, currency: str) -> str:
    if round(value, 2) == 0:
        return "±0"
    return ("+" if value > 0 else "-") + money(abs(value), currency)


def render_markdown(delta: CostDelta) -> str:
    """The PR comment's cost section: only the rows that change, plus the total (always)."""
    c = delta.after.currency
    out = [
        "### Monthly cost",
        "",
        f"Prices of {delta.after.price_date}, region {delta.after.region or 'unknown'}, {c}; min → max scale"
        + (f"; organisation prices from `{delta.after.organisation_file}`" if delta.after.organisation_file else "")
        + ".",
        "",
        "| | Before (min / max) | After (min / max) | Change (min / max) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, before, after in delta.rows():
        if label != "total" and _cents(before) == _cents(after):
            continue
        name = f"**{label}**" if label == "total" else f"`{label}`"
        old, new = (bound(delta.before), bound(delta.after)) if label == "total" else ("", "")
        out.append(
            f"| {name} | {old}{money(before[0], c)} / {old}{money(before[1], c)} "
            f"| {new}{money(after[0], c)} / {new}{money(after[1], c)} "
            f"| {_signed(after[0] - before[0], c)} / {_signed(after[1] - before[1], c)} |"
        )
    tokens = delta.token_rows()
    if tokens:
        out += [
            "",
            "| Per 1M output tokens | Before (full / expected load) | After (full / expected load) |",
            "| --- | ---: | ---: |",
        ]
        for row in tokens:
            before, after = row["before"], row["after"]
            out.append(
                f"| `{row['model']}` | {per_million(before['fullLoad'], c)} / {per_million(before['expectedLoad'], c)} "
                f"| {per_million(after['fullLoad'], c)} / {per_million(after['expectedLoad'], c)} |"
            )
    if delta.after.unpriced:
        out += ["", f"Not priced after the change ({len(delta.after.unpriced)}; the totals are a lower bound):", ""]
        out += [f"- `{x.item}`: {x.reason}" for x in delta.after.unpriced_items()]
    return "\n".join(out) + "\n"


def render_text(delta: CostDelta) -> str:
    """One line for terminals: the total before and after, at min and max scale."""
    c = delta.after.currency
    (b_min, b_max), (a_min, a_max) = delta.before.total, delta.after.total
    old, new = bound(delta.before), bound(delta.after)
    change = f"{_signed(a_min - b_min, c)} / {_signed(a_max - b_max, c)}"
    return (
        f"monthly cost (min / max, prices of {delta.after.price_date}): {old}{money(b_min, c)} / {old}{money(b_max, c)}"
        f" -> {new}{money(a_min, c)} / {new}{money(a_max, c)} ({change})"
        + (f"; {len(delta.after.unpriced)} item(s) not priced" if delta.after.unpriced else "")
    )
