"""How the CLI shows things: tables or plain lines or JSON, progress bars, money, escaping.

Every command renders through here, so that:

- remote text (a company called ``ACME [/] Holdings``, an API error containing ``[/]``) is
  never parsed as rich markup: cells and lines are ``rich.text.Text`` objects or printed with
  ``markup=False``; only the CLI's own fixed strings use markup (``styled``);
- without a terminal (cron, systemd, CI, a pipe) tables become plain, tab-separated, unwrapped
  lines and no spinner is drawn; ``hub --format table|plain|json`` chooses explicitly;
- ``--json`` output is exactly one JSON document on stdout (``emit_json``), lists shaped
  ``{"items": [...], "total": N}``; errors under ``--json`` are JSON too (see ``hub.cli``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hub.cli.util import Env, console, err_console
from hub.text import money as text_money

__all__ = [
    "Column",
    "emit_json",
    "escape",
    "line",
    "listing",
    "money",
    "page_progress",
    "styled",
    "table",
    "text",
]

FORMATS = ("auto", "table", "plain", "json")


def output_format(env: Env | None = None) -> str:
    """``table`` on a terminal, ``plain`` otherwise, unless ``--format`` said otherwise.

    Without ``env`` the running command's is used, so ``hub --format table`` holds for
    every table whether or not its command passed ``env`` along."""
    if env is None:
        ctx = click.get_current_context(silent=True)
        env = ctx.find_object(Env) if ctx is not None else None
    chosen = getattr(env, "format", "auto") if env is not None else "auto"
    if chosen in ("table", "plain"):
        return chosen  # json: a command without --json falls back to auto for its tables
    return "table" if console.is_terminal else "plain"


def text(value: Any, style: str | None = None) -> Text:
    """A cell or line fragment that is never parsed as markup."""
    return Text("" if value is None else str(value), style=style or "")


def styled(markup: str, **values: Any) -> Text:
    """The CLI's own markup with ``values`` escaped into it: ``styled("[bold]{name}[/]", name=x)``."""
    return Text.from_markup(markup.format(**{k: escape(str(v)) for k, v in values.items()}))


def line(*parts: Any, err: bool = False) -> None:
    """Print one line made of plain strings (never markup) and ``Text`` fragments."""
    target = err_console if err else console
    out = Text()
    for part in parts:
        out.append(part if isinstance(part, Text) else Text(str(part)))
    target.print(out, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    """Exactly one JSON document on stdout, whatever its length (no rich, no wrapping)."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def listing(items: list[Any], total: int | None = None, **extra: Any) -> dict[str, Any]:
    """The one JSON shape of a list: ``{"items": [...], "total": N, ...extra}``."""
    return {"items": items, "total": len(items) if total is None else total, **extra}


class Column:
    """One column: header, how to get the cell from a row, and rich options for tables."""

    def __init__(
        self, header: str, value: Callable[[Any], Any] | str, style: str = "", **options: Any
    ):
        self.header = header
        self.value = value if callable(value) else (lambda row, key=value: row.get(key))
        self.style = style
        self.options = options

    def cell(self, row: Any) -> Any:
        value = self.value(row)
        if isinstance(value, Text):
            return value
        return text("" if value is None else value, self.style)


def table(
    rows: Iterable[Any],
    columns: Sequence[Column],
    *,
    env: Env | None = None,
    title: str | None = None,
    caption: str | None = None,
    row_style: Callable[[Any], str | None] | None = None,
    section_before: Callable[[Any], bool] | None = None,
    **options: Any,
) -> None:
    """Rows as a rich table on a terminal, else as tab-separated plain lines with a header.

    ``row_style`` styles a whole row (a total in bold) and ``section_before`` draws a rule
    above a row; both only on a terminal, where they help the eye."""
    rows = list(rows)
    if output_format(env) == "plain":
        if title:
            click.echo(f"# {title}")
        click.echo("\t".join(c.header for c in columns))
        for row in rows:
            click.echo("\t".join(_plain(c.cell(row)) for c in columns))
        return
    grid = Table(title=title, caption=caption, **options)
    for c in columns:
        grid.add_column(c.header, **c.options)
    for row in rows:
        if section_before is not None and section_before(row):
            grid.add_section()
        grid.add_row(*(c.cell(row) for c in columns), style=row_style(row) if row_style else None)
    console.print(grid)


def _plain(cell: Any) -> str:
    value = cell.plain if isinstance(cell, Text) else str(cell)
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def money(amount: float | int | None) -> str:
    """``$1,234`` (whole units); empty for no value (``hub.text.money``)."""
    return text_money(amount, missing="", whole=True)


def page_progress(
    *, quiet: bool = False, counter: str = "{task.completed:,} records", transient: bool = False
) -> Progress:
    """The one progress display of the CLI (sync, run, demo): spinner, label, bar, counter,
    elapsed time, on stderr; nothing at all without a terminal or with ``quiet``."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn(counter),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
        transient=transient,
    )
