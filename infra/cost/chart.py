"""``cost --format png``: two bar charts, per model and per pool, min and max scale side by side."""

from __future__ import annotations

import io
import textwrap

from infra.cost.estimate import Estimate
from infra.cost.report import bound

_MIN_COLOUR = "#4C72B0"
_MAX_COLOUR = "#DD8452"


def _unpriced_models(result: Estimate) -> set[str]:
    return {x.model for x in result.lines if not x.priced and x.model is not None}


def _unpriced_pools(result: Estimate) -> set[str]:
    return {x.pool for x in result.total_lines if not x.priced and x.category == "nodes" and x.pool is not None}


def _label(name: str, values: tuple[float, float], unpriced: bool) -> str:
    if not unpriced:
        return name
    return f"{name}\n({'partly ' if values[1] else ''}not priced)"


def chart_title(result: Estimate) -> str:
    """The figure's title: totals ("at least" while something is unpriced), date, region, what is not priced."""
    low, high = result.total
    c = result.currency
    at_least = bound(result)
    missing = [x.item for x in result.unpriced_items()]
    title = (
        f"{result.stack}: monthly cost {at_least}{c} {low:,.0f} (min) - {at_least}{high:,.0f} (max)  ·  prices of "
        f"{result.price_date}, {result.region or 'unknown region'}"
    )
    if missing:
        # Short names (before any parenthesis), wrapped: the full reasons are in the text and JSON reports.
        names = list(dict.fromkeys(item.split(" (")[0] for item in missing))
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        title += "\n" + "\n".join(textwrap.wrap(f"not priced, left out of the totals: {shown}", 150))
    return title


def render_png(result: Estimate) -> bytes:
    """The chart as PNG bytes (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.axes import Axes

    groups = [
        ("per model", {m: result.model_total(m) for m in result.models}, _unpriced_models(result)),
        (
            "per pool" if result.pool_totals() else "per pool (none: existing cluster)",
            result.pool_totals(),
            _unpriced_pools(result),
        ),
    ]
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=100)
    c = result.currency
    figure.suptitle(chart_title(result), fontsize=10)
    axis: Axes
    for axis, (title, values, unpriced) in zip(axes, groups, strict=True):
        names = list(values)
        positions = range(len(names))
        width = 0.4
        axis.bar(
            [p - width / 2 for p in positions],
            [values[n][0] for n in names],
            width,
            label="min scale",
            color=_MIN_COLOUR,
        )
        axis.bar(
            [p + width / 2 for p in positions],
            [values[n][1] for n in names],
            width,
            label="max scale",
            color=_MAX_COLOUR,
        )
        # A bar of nothing would read as "free": say that a figure is missing instead.
        labels = [_label(n, values[n], n in unpriced) for n in names]
        axis.set_xticks(list(positions), labels, rotation=20, ha="right")
        axis.set_title(title)
        axis.set_ylabel(f"{c} per month")
        axis.grid(axis="y", alpha=0.3)
        if names:
            axis.legend()
    figure.tight_layout(rect=(0, 0, 1, 1 if result.complete else 0.93))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
