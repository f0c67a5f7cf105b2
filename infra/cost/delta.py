"""What a change does to the monthly cost: the estimate before and after, at min and max scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.cost.estimate import Estimate
from infra.cost.report import money


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
        f"Prices of {delta.after.price_date}, region {delta.after.region or 'unknown'}, {c}; min → max scale.",
        "",
        "| | Before (min / max) | After (min / max) | Change (min / max) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, before, after in delta.rows():
        if label != "total" and _cents(before) == _cents(after):
            continue
        name = f"**{label}**" if label == "total" else f"`{label}`"
        out.append(
            f"| {name} | {money(before[0], c)} / {money(before[1], c)} | {money(after[0], c)} / {money(after[1], c)} "
            f"| {_signed(after[0] - before[0], c)} / {_signed(after[1] - before[1], c)} |"
        )
    if delta.after.unpriced:
        out += ["", f"{len(delta.after.unpriced)} item(s) have no price in the table and are left out."]
    return "\n".join(out) + "\n"


def render_text(delta: CostDelta) -> str:
    """One line for terminals: the total before and after, at min and max scale."""
    c = delta.after.currency
    (b_min, b_max), (a_min, a_max) = delta.before.total, delta.after.total
    return (
        f"monthly cost (min / max, prices of {delta.after.price_date}): {money(b_min, c)} / {money(b_max, c)} -> "
        f"{money(a_min, c)} / {money(a_max, c)} ({_signed(a_min - b_min, c)} / {_signed(a_max - b_max, c)})"
    )
