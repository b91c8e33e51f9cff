"""Commands for playbooks, the task outbox and the CRM write-back: playbooks, tasks, push."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from hub.cli.util import Env, console, err_console, pass_env
from hub.lock import database_lock
from hub.text import plural

TASK_FILTERS = {
    "open": ("open", "pushing", "pushed"),
    "completed": ("completed",),
    "cancelled": ("cancelled",),
}


def register(cli: click.Group) -> None:
    cli.add_command(playbooks)
    cli.add_command(tasks)
    cli.add_command(push)


def _echo_json(data: Any) -> None:
    # Plain stdout, not rich: tooling wants exactly the JSON, however long.
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@click.command()
@click.option(
    "--run", "run_now", is_flag=True, help="Evaluate the playbooks now (fills the outbox)."
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def playbooks(env: Env, run_now: bool, as_json: bool) -> None:
    """List the playbooks: enabled, thresholds, last triggered, tasks opened.

    \b
    Examples:
      hub playbooks
      hub playbooks --run
      hub playbooks --json
    """
    from hub.playbooks import iter_playbook_stats, load_playbooks, run_playbooks

    config = env.config()
    setup = load_playbooks(config)
    store = env.store()
    run = None
    if run_now:
        with database_lock(store, "hub playbooks --run"):
            run = run_playbooks(store, config)
    stats = {row["playbook"]: row for row in iter_playbook_stats(store)}
    rows = []
    for name, pb in setup.playbooks.items():
        st = stats.get(name, {})
        rows.append(
            {
                "name": name,
                "title": pb.title,
                "enabled": bool(setup.section.enabled and pb.enabled),
                "thresholds": pb.thresholds(),
                "priority": pb.settings["priority"],
                "due_in_days": pb.settings["due_in_days"],
                "snooze_days": setup.snooze_days(name),
                "last_triggered": st.get("last_triggered"),
                "tasks_opened": st.get("opened") or 0,
                "open_now": st.get("open_now") or 0,
            }
        )
    if as_json:
        _echo_json({"playbooks": rows, "run": run.to_dict() if run else None})
        return
    if run is not None:
        console.print(f"Playbooks run {run.run_id}: {run.note()}", highlight=False, soft_wrap=True)
        for error in run.errors:
            err_console.print(f"[red]error:[/] {escape(error)}", soft_wrap=True)
    table = Table(title="Playbooks", caption="tasks = opened in total (open now)")
    table.add_column("name", no_wrap=True)
    table.add_column("thresholds", overflow="fold", min_width=16)
    table.add_column("priority", no_wrap=True)
    table.add_column("last", no_wrap=True)
    table.add_column("tasks", justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["name"] if r["enabled"] else f"[dim]{r['name']} (off)[/]",
            escape("\n".join(f"{k}={_value(v)}" for k, v in r["thresholds"].items())),
            f"{r['priority']} {r['due_in_days']}d",
            (r["last_triggered"] or "never")[:10],
            f"{r['tasks_opened']} ({r['open_now']})",
        )
    console.print(table)
    if run is not None and run.status == "error":
        raise SystemExit(1)


@click.command()
@click.option(
    "--status",
    "status",
    type=click.Choice(["open", "completed", "snoozed", "cancelled", "all"]),
    default="open",
    show_default=True,
    help="open = not done yet (open, pushing, pushed); snoozed = completed and still snoozed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def tasks(env: Env, status: str, as_json: bool) -> None:
    """List the follow-up tasks in the outbox.

    \b
    Examples:
      hub tasks
      hub tasks --status snoozed
      hub tasks --json
    """
    from hub.playbooks import Outbox

    rows = Outbox(env.store()).listing(status)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        console.print(f"No {status} tasks.")
        return
    table = Table(title=f"Tasks ({status}): {len(rows)}", caption="--json shows every field")
    table.add_column("due", no_wrap=True)
    table.add_column("priority", no_wrap=True)
    table.add_column("account", overflow="fold", ratio=1)
    table.add_column("subject", overflow="fold", ratio=2)
    table.add_column("status", no_wrap=True)
    for t in rows:
        state = t["status"]
        if t["snoozed"]:
            state = f"snoozed to {t['snoozed_until'][:10]}"
        table.add_row(
            (t["due_at"] or "")[:10],
            t["priority"] or "",
            escape(t["account_name"] or t["account_id"]),
            escape(t["subject"] or ""),
            state,
        )
    console.print(table)


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_env
def push(env: Env, dry_run: bool, as_json: bool) -> None:
    """Write health fields and tasks to the CRM (only values that changed).

    \b
    Examples:
      hub push --dry-run
      hub push
      hub push --json | jq .summary
    """
    from hub.push import run_push

    config, store = env.config(), env.store()
    if dry_run:
        result = run_push(store, config, dry_run=True)
    else:
        # One writer: a push beside another push or a running `hub run` waits its turn.
        with database_lock(store, "hub push"):
            result = run_push(store, config)
    if as_json:
        _echo_json(result.to_dict())
    else:
        print_push_result(result)
    if result.status in ("error", "partial"):
        raise SystemExit(1)


def print_push_result(result: Any) -> None:
    """Human output of a push: setup, changes per company (old → new), tasks, errors."""
    out = console.print
    if result.status == "disabled":
        out("Push is disabled ([push] enabled = false).")
        return
    if result.dry_run:
        out("[bold]Dry run:[/] nothing was written.")
    if result.setup:
        out("[bold]Setup[/]" + (" (would do)" if result.dry_run else ""))
        for action in result.setup:
            out(f"  + {escape(action)}", highlight=False)
    by_record: dict[str, list[Any]] = {}
    for change in result.changes:
        by_record.setdefault(f"{change.object_type} {change.object_id}", []).append(change)
    for record, changes in by_record.items():
        out(f"[bold]{escape(record)}[/] ({escape(changes[0].account_name)})", highlight=False)
        for c in changes:
            old = c.old if c.old != "" else "(unset)"
            new = c.new if c.new != "" else "(cleared)"
            mark = {"failed": "[red]✗[/] ", "written": "[green]✓[/] "}.get(c.status, "  ")
            line = f"  {mark}{c.property}: {escape(_short(old))} → {escape(_short(new))}"
            if c.error:
                line += f"  [red]{escape(c.error)}[/]"
            out(line, highlight=False, soft_wrap=True)
    if result.tasks:
        out("[bold]Tasks[/]")
        for t in result.tasks:
            verb = {
                "create": "would create",
                "reconcile": "would reconcile",
                "found": "already in the CRM" if not result.dry_run else "would record existing",
                "skipped": "skipped",
                "created": "created",
                "cancelled": "cancelled",
                "failed": "[red]failed[/]",
            }.get(t.action, t.action)
            line = (
                f"  {verb}: {escape(f'[{t.priority}]')} {escape(t.subject)} — record {t.object_id}, "
                f"owner {t.owner_id or 'unassigned'}, due {(t.due_at or '')[:10]} ({t.playbook})"
            )
            if t.remote_id:
                line += f" → CRM task {t.remote_id}"
            if t.error:
                line += f"  [red]{escape(t.error)}[/]"
            out(line, highlight=False, soft_wrap=True)
    if result.completed:
        verb = "would complete" if result.dry_run else "completed"
        out(f"{plural(len(result.completed), 'task')} {verb} (done in the CRM; snoozed).")
    if result.caps:
        out(
            escape(result.caps) + (f"; {result.held} held for a later push" if result.held else ""),
            highlight=False,
        )
    for note in result.notes:
        out(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    for error in result.errors:
        err_console.print(f"[red]error:[/] {escape(error)}", soft_wrap=True, highlight=False)
    out(
        f"{escape(result.summary())}; {result.requests} requests, {result.writes} writes.",
        highlight=False,
    )


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "any"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _short(text: str, limit: int = 120) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
