"""Charts as inline SVG, drawn on the server: readable without JavaScript, nothing to load.

Each function returns ``Markup`` (safe to put in a template); every text it draws goes through
``escape``. Colours are presentation attributes (not ``style=``), so the page's Content
Security Policy needs no ``unsafe-inline``. Each chart has a ``<title>`` and ``aria-label``
for screen readers, and each mark a ``<title>`` that browsers show as a tooltip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

BAND_COLOURS = {
    "green": "#2e9d5b",
    "yellow": "#d9a400",
    "red": "#d64545",
    "churned": "#6b6b6b",
    "unscored": "#b8bcc4",
}
INK = "#3b4252"
GRID = "#e3e6ec"


def band_colour(band: str | None) -> str:
    return BAND_COLOURS.get(band or "unscored", "#8a93a6")


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, text: Any, *, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{INK}" '
        f'text-anchor="{anchor}">{escape(str(text))}</text>'
    )


def histogram(rows: Sequence[dict[str, Any]], *, width: int = 520, height: int = 200) -> Markup:
    """Scores in ten 10-point bins, each bar stacked by band (rows: bin, band, n)."""
    bins: dict[int, dict[str, int]] = {b: {} for b in range(10)}
    for row in rows:
        bins[int(row["bin"])][row["band"] or "unscored"] = int(row["n"])
    top = max([sum(v.values()) for v in bins.values()] + [1])
    left, bottom, right, upper = 36, 28, 8, 12
    plot_w, plot_h = width - left - right, height - bottom - upper
    bar_w = plot_w / 10
    body = []
    for i in range(5):
        value = round(top * i / 4)
        y = upper + plot_h - plot_h * value / top
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        body.append(_text(left - 6, y + 4, value, anchor="end", size=10))
    for b, counts in bins.items():
        x = left + b * bar_w + 2
        y = upper + plot_h
        for band in ("red", "yellow", "green", "churned", "unscored"):
            n = counts.get(band, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            tip = escape(f"{b * 10}–{b * 10 + 9 if b < 9 else 100}: {n} {band}")
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" '
                f'fill="{band_colour(band)}"><title>{tip}</title></rect>'
            )
        body.append(_text(left + b * bar_w, height - 10, b * 10, anchor="middle"))
    body.append(_text(width - right, height - 10, "100", anchor="end"))
    return _svg(width, height, "Distribution of health scores", body)


def _days(points: Sequence[tuple[dt.date, float]]) -> tuple[dt.date, dt.date]:
    first, last = points[0][0], points[-1][0]
    if first == last:
        first = last - dt.timedelta(days=1)
    return first, last


def score_trend(
    history: Sequence[dict[str, Any]],
    bands: dict[str, float] | None = None,
    *,
    width: int = 520,
    height: int = 180,
) -> Markup:
    """The score per day (rows: day, score, band) over shaded band zones."""
    points = [
        (dt.date.fromisoformat(str(r["day"])[:10]), float(r["score"]))
        for r in history
        if r.get("score") is not None
    ]
    label = "Health score over time"
    if not points:
        return _svg(width, 40, label, [_text(8, 24, "No score history yet.")])
    bands = bands or {"green": 70, "yellow": 40}
    left, bottom, right, upper = 30, 24, 10, 10
    plot_w, plot_h = width - left - right, height - bottom - upper
    first, last = _days(points)
    span = (last - first).days or 1

    def xy(day: dt.date, score: float) -> tuple[float, float]:
        return (
            left + plot_w * (day - first).days / span,
            upper + plot_h - plot_h * max(0.0, min(100.0, score)) / 100,
        )

    body = []
    edges = [100.0, float(bands.get("green", 70)), float(bands.get("yellow", 40)), 0.0]
    for band, (hi, lo) in zip(("green", "yellow", "red"), zip(edges, edges[1:])):
        y_hi, y_lo = xy(first, hi)[1], xy(first, lo)[1]
        body.append(
            f'<rect x="{left}" y="{y_hi:.1f}" width="{plot_w}" height="{y_lo - y_hi:.1f}" '
            f'fill="{band_colour(band)}" fill-opacity="0.10"/>'
        )
    for value in (0, 40, 70, 100):
        y = xy(first, value)[1]
        body.append(_text(left - 4, y + 4, value, anchor="end", size=10))
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
        for i, (x, y) in enumerate(xy(d, s) for d, s in points)
    )
    body.append(f'<path d="{path}" fill="none" stroke="{INK}" stroke-width="2"/>')
    for (day, score), row in zip(points, [r for r in history if r.get("score") is not None]):
        x, y = xy(day, score)
        band = row.get("band")
        tip = escape(f"{day}: {score:g} ({band})")
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{band_colour(band)}">'
            f"<title>{tip}</title></circle>"
        )
    body.append(_text(left, height - 6, first.isoformat()))
    body.append(_text(width - right, height - 6, last.isoformat(), anchor="end"))
    return _svg(width, height, label, body)


def mrr_steps(points: Sequence[dict[str, Any]], *, width: int = 520, height: int = 160) -> Markup:
    """MRR as a step line (points: ts, mrr), money on the left axis."""
    label = "MRR over time"
    data = [(dt.date.fromisoformat(str(p["ts"])[:10]), float(p["mrr"])) for p in points]
    if not data:
        return _svg(width, 40, label, [_text(8, 24, "No MRR changes on the timeline.")])
    left, bottom, right, upper = 64, 24, 10, 10
    plot_w, plot_h = width - left - right, height - bottom - upper
    first, last = _days(data)
    span = (last - first).days or 1
    top = max(v for _, v in data) or 1.0

    def xy(day: dt.date, value: float) -> tuple[float, float]:
        return left + plot_w * (day - first).days / span, upper + plot_h - plot_h * value / top

    body = []
    for value in (0, top / 2, top):
        y = xy(first, value)[1]
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        body.append(_text(left - 4, y + 4, f"${value:,.0f}", anchor="end", size=10))
    segments = []
    for i, (day, value) in enumerate(data):
        x, y = xy(day, value)
        if i == 0:
            segments.append(f"M{x:.1f},{y:.1f}")
        else:
            segments.append(f"H{x:.1f} V{y:.1f}")
    path = " ".join(segments)
    body.append(f'<path d="{path}" fill="none" stroke="#3267d6" stroke-width="2"/>')
    for day, value in data:
        x, y = xy(day, value)
        tip = escape(f"{day}: ${value:,.2f}/mo")
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#3267d6"><title>{tip}</title></circle>'
        )
    body.append(_text(left, height - 6, first.isoformat()))
    body.append(_text(width - right, height - 6, last.isoformat(), anchor="end"))
    return _svg(width, height, label, body)


def band_bars(
    books: Sequence[dict[str, Any]], *, key: str = "bands", width: int = 640, row: int = 22
) -> Markup:
    """One horizontal bar per owner, split by band (100% = the owner's accounts)."""
    label = "Band mix per owner"
    if not books:
        return _svg(width, 40, label, [_text(8, 24, "No accounts yet.")])
    left, right = 150, 60
    plot_w = width - left - right
    height = row * len(books) + 8
    body = []
    for i, book in enumerate(books):
        y = 4 + i * row
        counts = book[key]
        total = sum(counts.values()) or 1
        body.append(_text(left - 6, y + 14, book["owner_name"][:22], anchor="end"))
        x = float(left)
        for band in ("green", "yellow", "red", "churned", "unscored"):
            n = counts.get(band, 0)
            if not n:
                continue
            w = plot_w * n / total
            shown = f"{n:,.0f}" if key == "bands" else f"${n:,.0f}"
            tip = escape(f"{book['owner_name']}: {shown} {band}")
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{row - 6}" '
                f'fill="{band_colour(band)}"><title>{tip}</title></rect>'
            )
            x += w
        total_text = f"{sum(counts.values()):,.0f}"
        body.append(
            _text(width - right + 6, y + 14, total_text if key == "bands" else "$" + total_text)
        )
    return _svg(width, height, label, body)


def retention_bars(books: Sequence[dict[str, Any]], *, width: int = 640, row: int = 22) -> Markup:
    """NRR and GRR per book as paired horizontal bars on one 0–150% scale, 100% marked."""
    label = "Net and gross revenue retention per owner"
    shown = [b for b in books if b.get("nrr_pct") is not None]
    if not shown:
        return _svg(width, 40, label, [_text(8, 24, "No book had MRR at the start of the period.")])
    left, right, top_pct = 150, 70, 150.0
    plot_w = width - left - right
    height = row * len(shown) + 24
    x100 = left + plot_w * 100 / top_pct
    body = []
    for i, book in enumerate(shown):
        y = 4 + i * row
        body.append(_text(left - 6, y + 13, str(book["label"])[:22], anchor="end"))
        for offset, key, colour in ((0, "nrr_pct", "#3267d6"), (8, "grr_pct", "#8fb0ee")):
            value = book.get(key)
            if value is None:
                continue
            w = plot_w * min(float(value), top_pct) / top_pct
            tip = escape(f"{book['label']}: {key[:3].upper()} {value:g}%")
            body.append(
                f'<rect x="{left}" y="{y + offset:.1f}" width="{w:.1f}" height="7" '
                f'fill="{colour}"><title>{tip}</title></rect>'
            )
        body.append(_text(width - right + 6, y + 13, f"{book['nrr_pct']:g}%"))
    body.append(
        f'<line x1="{x100:.1f}" x2="{x100:.1f}" y1="0" y2="{height - 18}" stroke="{INK}" '
        'stroke-dasharray="3,3"/>'
    )
    body.append(_text(x100, height - 6, "100%", anchor="middle", size=10))
    return _svg(width, height, label, body)
