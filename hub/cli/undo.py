"""Commands that take write-back back: ``hub push revert RUN`` and ``hub uninstall <pusher>``.

The work is ``hub.push.undo``; this module only parses options, takes the database lock
for real runs and prints the result (what was or would be done, what was skipped and why).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from hub.cli.render import emit_json, line, styled, text
from hub.cli.util import Env, account_option, limit_option, pass_env
from hub.lock import database_lock

DEFAULT_LIMIT = 20


def register(cli: click.Group, push: click.Group) -> None:
    push.add_command(push_revert)
    cli.add_command(uninstall_cmd)


@click.command("revert")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--dry-run", is_flag=True, help="Print what would be restored; change nothing.")
@limit_option("Items", 20, detail=True)
@account_option()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_env
def push_revert(
    env: Env, run_id: int, dry_run: bool, limit: int | None, account: str | None, as_json: bool
) -> None:
    """Undo a push run: restore the values it replaced, archive its open tasks.

    A value is restored only where the CRM still holds what that run wrote; the others are
    listed as skipped with the reason. Find RUN with `hub push history`. The next
    `hub push` writes the current health values again.

    The summary comes first (with the skipped items counted by reason), then the items:
    what is done or planned first, then what is skipped. A run already reverted is left
    alone (revert the revert run to take it back).

    \b
    Examples:
      hub push revert 12 --dry-run
      hub push revert 12 --dry-run --account "Acme Inc" --limit 50
      hub push revert 12
    """
    from hub.push.undo import revert_run

    config, store = env.config(), env.store()
    if dry_run:
        result = revert_run(store, config, run_id, dry_run=True)
    else:
        with database_lock(store, "hub push revert"):
            result = revert_run(store, config, run_id)
    if limit is None and not as_json:
        limit = DEFAULT_LIMIT
    _print(result, as_json, limit=limit, account=account)


@click.command("uninstall")
@click.argument("pusher")
@click.option("--tasks", is_flag=True, help="Also archive the open tasks the hub created.")
@click.option("--yes", is_flag=True, help="Do it (without --yes: list what would go).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_env
def uninstall_cmd(env: Env, pusher: str, tasks: bool, yes: bool, as_json: bool) -> None:
    """Remove what the hub created in a CRM: the fields it installed and what holds them
    (archived where the CRM can restore them, else deleted) and, with --tasks, the open tasks
    carrying the hub's marker.

    A field the config mapped the hub onto is never removed. Without --yes nothing changes.
    The next `hub push` installs again.

    \b
    Examples:
      hub uninstall hubspot
      hub uninstall hubspot --tasks --yes
    """
    from hub.push.undo import uninstall

    config, store = env.config(), env.store()
    if not yes:
        result = uninstall(store, config, pusher, tasks=tasks, dry_run=True)
    else:
        with database_lock(store, "hub uninstall"):
            result = uninstall(store, config, pusher, tasks=tasks, dry_run=False)
    _print(result, as_json)
    if not yes and not as_json and result.items:
        line("Nothing was changed; run again with --yes to do it.")


def _print(
    result: Any, as_json: bool, *, limit: int | None = None, account: str | None = None
) -> None:
    view = result.view(limit=limit, account=account)
    if as_json:
        data = result.to_dict()
        data["items"] = [asdict(i) for i in view["items"]]
        data["total"] = view["total"]
        emit_json(data)
    else:
        print_undo(result, view, account=account)
    if result.status in ("error", "partial"):
        raise SystemExit(1)


def print_undo(result: Any, view: dict[str, Any] | None = None, account: str | None = None) -> None:
    """Errors, then the summary (skipped counted by reason), then the items asked for
    (done, planned and failed before skipped, each skip with its reason), then notes."""
    view = view or result.view()
    for error in result.errors:
        line(styled("[red]error:[/] "), error, err=True)
    if result.dry_run:
        line(styled("[bold]Dry run:[/] nothing was changed."))
    line(styled("[bold]{s}[/]", s=result.summary()))
    skipped = result.skipped_by_reason()
    if skipped:
        line("  skipped: ", "; ".join(f"{n} {reason}" for reason, n in skipped.items()))
    for item in view["items"]:
        if item.status == "skipped":
            mark = text("skipped ", "yellow")
        elif item.status == "failed":
            mark = text("failed ", "red")
        else:
            mark = text("✓ " if item.status == "done" else "  ", "green")
        name = f" ({item.label})" if item.label else ""
        if item.what == "value":
            what = (
                f"{item.object_type} {item.object_id}{name} {item.property}: "
                f"{_v(item.current)} → {_v(item.restore)}"
            )
        elif item.what == "task":
            what = (
                f"task {item.object_id} ({item.current}){': ' + item.label if item.label else ''}"
            )
        else:
            label = f" ({item.current})" if item.current else ""
            what = f"{item.kind} {item.object_id}{label}"
        line("  ", mark, what, text(f"  {item.reason}", "dim") if item.reason else "")
    if account and not view["total"]:
        line(f"Nothing in this {result.kind} matches {account!r} (id, CRM id or name).")
    more = view["total"] - len(view["items"])
    if more > 0:
        line(f"… {more} more, use --limit N or --account ID_OR_NAME")
    for note in result.notes:
        line("note: ", note)
    if result.run_id is not None:
        line(f"Recorded as run {result.run_id} (`hub push history`).")


def _v(value: str) -> str:
    if value == "":
        return "(unset)"
    value = value.replace("\n", " ")
    return value if len(value) <= 80 else value[:79] + "…"
