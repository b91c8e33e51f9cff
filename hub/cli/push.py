"""Commands for playbooks, the task outbox and the CRM write-back: playbooks, tasks, push.

Everything is drawn through ``hub.cli.render``: remote text (company names, task subjects,
API errors) is never parsed as markup, and without a terminal tables become plain lines.
"""

from __future__ import annotations

from typing import Any

import click

from hub.cli.render import Column, emit_json, line, listing, styled, table, text
from hub.cli.util import Env, limit_option, pass_env
from hub.errors import ConfigError
from hub.lock import database_lock
from hub.text import plural


def register(cli: click.Group) -> None:
    cli.add_command(playbooks)
    cli.add_command(tasks)
    cli.add_command(push)
    from hub.cli import undo

    undo.register(cli, push)


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
        with database_lock(store, "hub playbooks"):
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
                "findings": st.get("opened") or 0,
                "open_now": st.get("open_now") or 0,
                # Deprecated (dropped in the next release): it always counted findings.
                "tasks_opened": st.get("opened") or 0,
            }
        )
    if as_json:
        emit_json(listing(rows, run=run.to_dict() if run else None))
        return
    if run is not None:
        line(f"Playbooks run {run.run_id}: {run.note()}")
        for error in run.errors:
            line(styled("[red]error:[/] "), error, err=True)
    table(
        rows,
        [
            Column(
                "name",
                lambda r: text(r["name"]) if r["enabled"] else text(f"{r['name']} (off)", "dim"),
                no_wrap=True,
            ),
            Column(
                "thresholds",
                lambda r: "\n".join(f"{k}={_value(v)}" for k, v in r["thresholds"].items()),
                overflow="fold",
                min_width=16,
            ),
            Column("priority", lambda r: f"{r['priority']} {r['due_in_days']}d", no_wrap=True),
            Column("last", lambda r: (r["last_triggered"] or "never")[:10], no_wrap=True),
            Column(
                "findings",
                lambda r: f"{r['findings']} ({r['open_now']})",
                justify="right",
                no_wrap=True,
            ),
        ],
        title="Playbooks",
        caption="findings = this playbook's reasons on tasks, in total (on open tasks now)",
    )
    if run is not None and run.status == "error":
        raise SystemExit(1)


TASK_FILTERS = {"open": "not done: open, pushing or pushed"}
"""How ``hub tasks`` titles a filter that spans several statuses."""


@click.command()
@click.option(
    "--status",
    "status",
    type=click.Choice(["open", "completed", "snoozed", "cancelled", "reverted", "all"]),
    default="open",
    show_default=True,
    help="open = not done yet (open, pushing, pushed); snoozed = completed and still "
    "snoozed; reverted = archived by hub push revert (never snoozed).",
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
        emit_json(listing(rows, status=status))
        return
    if not rows:
        line(f"No {status} tasks.")
        return
    table(
        rows,
        [
            Column("due", lambda t: (t["due_at"] or "")[:10], no_wrap=True),
            Column("priority", "priority", no_wrap=True),
            Column(
                "account", lambda t: t["account_name"] or t["account_id"], overflow="fold", ratio=1
            ),
            Column("subject", "subject", overflow="fold", ratio=2),
            Column(
                "status",
                lambda t: f"snoozed to {t['snoozed_until'][:10]}" if t["snoozed"] else t["status"],
                no_wrap=True,
            ),
        ],
        title=f"Tasks ({TASK_FILTERS.get(status, status)}): {len(rows)}",
        caption="--json shows every field",
    )


@click.group(invoke_without_command=True)
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
@limit_option("Accounts", 20, detail=True)
@click.option("--account", help="Only this account in the detail (id, domain or name).")
@click.option("--show-body", is_flag=True, help="Show each task's body in the detail.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def push(
    ctx: click.Context,
    dry_run: bool,
    limit: int | None,
    account: str | None,
    show_body: bool,
    as_json: bool,
) -> None:
    """Write health fields and tasks to the CRM (only values that changed).

    The summary comes first (records, values by property, tasks by playbook and owner),
    then the detail per account. --json prints {"summary": {...}, "items": [...],
    "total": N} (one item per account with its changes and tasks).

    \b
    Examples:
      hub push --dry-run
      hub push --dry-run --account "Acme Inc" --show-body
      hub push
      hub push --json | jq .summary
      hub push history
    """
    if ctx.invoked_subcommand is not None:
        return
    _push(ctx.ensure_object(Env), dry_run, as_json, limit, account, show_body)


@push.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def push_history_cmd(env: Env, limit: int, as_json: bool) -> None:
    """List push, revert and uninstall runs with what each did (newest first).

    \b
    Examples:
      hub push history
      hub push history --limit 5 --json
    """
    from hub.push.history import push_history

    data = push_history(env.store(), limit=limit)
    if as_json:
        emit_json(listing(data["items"], data["total"]))
        return
    if not data["items"]:
        line("No push runs yet.")
        return
    table(
        data["items"],
        [
            Column("run", "run_id", justify="right", no_wrap=True),
            Column("kind", "kind", no_wrap=True),
            Column("pushers", lambda r: ", ".join(r["pushers"]) or "-", no_wrap=True),
            Column("started", lambda r: (r["started_at"] or "")[:19], no_wrap=True),
            Column("status", "status", no_wrap=True),
            Column("records", "records", justify="right", no_wrap=True),
            Column("values", "values_written", justify="right", no_wrap=True),
            Column("tasks", "tasks_created", justify="right", no_wrap=True),
            Column("archived", "tasks_archived", justify="right", no_wrap=True),
            Column("removed", "removed", justify="right", no_wrap=True),
        ],
        env=env,
        title=f"Push runs: {data['total']}",
    )


def _push(
    env: Env,
    dry_run: bool,
    as_json: bool,
    limit: int | None = None,
    account: str | None = None,
    show_body: bool = False,
) -> None:
    from hub.push import push_settings, run_push
    from hub.push.preview import DEFAULT_LIMIT, build_preview

    config, store = env.config(), env.store()
    label = account
    if account is not None:
        # The resolver every account argument uses (id, domain, name); a miss stops here,
        # before anything is written.
        from hub.timeline.identity import account_for

        found = account_for(store, account)
        if found is None:
            raise ConfigError(
                f"no account matches {account!r}",
                hint="use an id, domain or name from 'hub accounts'",
            )
        account, label = found["id"], found.get("name") or found["id"]
    if dry_run:
        result = run_push(store, config, dry_run=True)
    else:
        # One writer: a push beside another push or a running `hub run` waits its turn.
        with database_lock(store, "hub push"):
            result = run_push(store, config)
    if limit is None and not as_json:
        limit = DEFAULT_LIMIT
    preview = build_preview(
        store,
        result,
        limit=limit,
        account=account,
        show_body=show_body,
        tasks_on=push_settings(config).tasks,
    )
    if as_json:
        data = result.to_dict()
        for key in ("changes", "tasks", "held_tasks", "summary"):
            data.pop(key, None)
        emit_json({**preview, **data})
    else:
        print_push_preview(result, preview, show_body=show_body, account=label)
    if result.status in ("error", "partial"):
        raise SystemExit(1)


def print_push_preview(
    result: Any, preview: dict[str, Any], *, show_body: bool = False, account: str | None = None
) -> None:
    """Human output of a push: the summary first, then the detail per account, then notes."""
    if result.status == "disabled":
        line("Push is disabled ([push] enabled = false).")
        return
    summary = preview["summary"]
    # What stopped (or would stop) the push comes first, before any count.
    for error in result.errors:
        line(styled("[red]error:[/] "), error, err=True)
    if result.dry_run:
        line(styled("[bold]Dry run:[/] nothing was written."))
    line(styled("[bold]Summary:[/] "), summary["text"])
    for note in result.notes:
        if note.startswith("scope:"):
            line("  ", note)
    if summary["values"]:
        by_pusher = summary["values_by_pusher"]
        if len(by_pusher) > 1:
            by_prop = "; ".join(
                f"{pusher}: " + ", ".join(f"{p} {n}" for p, n in props.items())
                for pusher, props in by_pusher.items()
            )
        else:
            by_prop = ", ".join(f"{p} {n}" for p, n in summary["values_by_property"].items())
        records = ", ".join(f"{n} {t}" for t, n in summary["records_by_type"].items())
        line(f"  {records}, {plural(summary['values'], 'value')}: ", by_prop)
    if summary["tasks"]:
        by_playbook = ", ".join(f"{p} {n}" for p, n in summary["tasks_by_playbook"].items())
        by_owner = ", ".join(f"{o} {n}" for o, n in summary["tasks_by_owner"].items())
        line(f"  {plural(summary['tasks'], 'new task')} by playbook: ", by_playbook)
        line("  by owner: ", by_owner)
    if summary["recovered"]:
        line(
            f"  {plural(summary['recovered'], 'task')} recovered from an earlier push that "
            "stopped (looked up before any is created again; they count toward the caps)"
        )
    if summary["why_no_tasks"]:
        line("  ", summary["why_no_tasks"])
    if result.caps:
        line("  ", result.caps)
    if result.held:
        reasons = ", ".join(f"{n} by the {r}" for r, n in summary["held_by_reason"].items())
        owners = ", ".join(f"{o} {n}" for o, n in summary["held_by_owner"].items())
        line(f"  {plural(result.held, 'task')} held for a later push ({reasons}); owners: {owners}")
    if result.completed:
        verb = "would complete" if result.dry_run else "completed"
        line(f"  {plural(len(result.completed), 'task')} {verb} (done in the CRM; snoozed).")
    if result.setup:
        line(styled("[bold]Setup[/]"), " (would do)" if result.dry_run else "")
        for action in result.setup:
            line("  + ", action)
    if preview["items"]:
        line(styled("[bold]Detail[/]"), f" ({len(preview['items'])} of {preview['total']})")
    for item in preview["items"]:
        label = f"{item['object_type']} {item['object_id']}" if item["object_id"] else "no record"
        line(text(item["account_name"] or item["account_id"], "bold"), f" — {label}")
        for c in item["changes"]:
            old = c["old"] if c["old"] != "" else "(unset)"
            new = c["new"] if c["new"] != "" else "(cleared)"
            mark = {"failed": text("✗ ", "red"), "written": text("✓ ", "green")}.get(
                c["status"], "  "
            )
            error = text(f"  {c['error']}", "red") if c["error"] else ""
            line("  ", mark, f"{c['property']}: {old} → {new}", error)
        for t in item["tasks"]:
            verb = text(t["verb"], "red") if t["action"] == "failed" else t["verb"]
            if t.get("recovered"):
                verb = text(f"{t['verb']} [recovered from an earlier push]")
            tail = f"; also on {', '.join(t['links'])}" if t.get("links") else ""
            tail += f" → CRM task {t['remote_id']}" if t["remote_id"] else ""
            why = ""
            if t["error"]:
                why = text(f"  {t['error']}", "yellow" if t["action"] == "held" else "red")
            line(
                "  ",
                verb,
                f": [{t['priority']}] {t['subject']} — owner {t['owner']}, "
                f"due {(t['due_at'] or '')[:10]} ({t['playbook']}){tail}",
                why,
            )
            if show_body and t.get("body"):
                for body_line in t["body"].splitlines():
                    line("      ", body_line)
    if account and not preview["total"]:
        line(f"Nothing in this push for {account}.")
    more = preview["total"] - len(preview["items"])
    if more > 0:
        line(f"… {more} more, use --limit N or --account ID_OR_NAME")
    for note in result.notes:
        if not note.startswith("scope:"):
            line("note: ", note)
    line(f"{result.summary()}; {result.requests} requests, {result.writes} writes.")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "any"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
