"""The NRR-per-CSM table as a rich ``Table`` (``hub demo`` ends with it)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table


def short(value: float | None) -> str:
    """Dollars in a narrow column: $950, $3.6k, $73k, $1.20M."""
    if value is None:
        return "—"
    sign, v = ("−" if value < 0 else ""), abs(value)
    if v >= 1_000_000:
        return f"{sign}${v / 1_000_000:.2f}M"
    if v >= 9_950:
        return f"{sign}${v / 1000:.0f}k"
    if v >= 1_000:
        return f"{sign}${v / 1000:.1f}k"
    return f"{sign}${v:,.0f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def csm_table(rows: list[dict[str, Any]]) -> Table:
    """Rows from ``hub.portfolio.csm_rows``; the last one (the total) in bold."""
    period = rows[0]["period"] if rows else ""
    table = Table(
        title=f"Net revenue retention per CSM book, {period}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("CSM", ratio=1, min_width=12)
    for name in ("Accts", "Start", "End", "NRR", "GRR", "Churned"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("Top reason", no_wrap=True)
    for i, row in enumerate(rows):
        last = i == len(rows) - 1
        if last:
            table.add_section()
        table.add_row(
            escape(str(row["owner"])),
            str(row["accounts"]),
            short(row["starting_mrr"]),
            short(row["closing_mrr"]),
            _pct(row["nrr_pct"]),
            _pct(row["grr_pct"]),
            short(row["churn"]),
            escape(str(row["top_churn_reason"] or "—").replace("_", " ")),
            style="bold" if last else None,
        )
    return table
