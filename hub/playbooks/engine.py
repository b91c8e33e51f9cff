"""Running the playbooks: evaluate every enabled playbook and fill the outbox, as one run.

Task discipline, applied to every playbook's triggers here (not in each playbook):

* **Churned accounts** (band ``churned``) get no task but from playbooks marked ``churn``
  (the churn follow-up).
* **Baseline.** An account's first scoring is its baseline: ``state`` rules (band, score)
  open nothing; ``event`` rules open tasks only for events of the last ``baseline_days``;
  ``presence`` rules (a competitor on the site now) fire whatever the detection date.
* **Evidence.** A trigger with neither events nor moved measures is refused and counted.
* **One task per account and run.** Several findings for one account become one task that
  lists every reason (``one_task_per_account``).
* **Dedupe and snooze** come from the outbox; an ``open`` task whose findings all stopped
  firing (or whose playbook was switched off) is cancelled before anyone saw it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from hub import clock
from hub.errors import HubError
from hub.playbooks.outbox import Outbox, task_keys
from hub.playbooks.render import merge_rows, render_task
from hub.playbooks.rules import Playbook, PlaybookContext, Trigger
from hub.playbooks.settings import PlaybookSetup, load_playbooks
from hub.store import Store
from hub.text import plural

log = logging.getLogger("hub.playbooks")


@dataclass
class PlaybookResult:
    """Outcome of one playbooks run."""

    run_id: int | None = None
    status: str = "ok"
    opened: list[str] = field(default_factory=list)
    """Ids of the tasks opened by this run."""
    by_playbook: Counter[str] = field(default_factory=Counter)
    triggers: int = 0
    deduplicated: int = 0
    snoozed: int = 0
    cancelled: int = 0
    merged: int = 0
    """Findings folded into another task of the same account (one task per account and run)."""
    baseline: int = 0
    """Findings held back because the account was scored for the first time."""
    churned: int = 0
    """Findings held back because the account has churned."""
    no_evidence: int = 0
    """Findings refused because they named no evidence."""
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def note(self) -> str:
        """One line: findings → merged → tasks opened ("opened" always counts tasks, after
        merging; per-playbook counts are findings, which is why they sum above it)."""
        opened = plural(len(self.opened), "task")
        if self.merged:
            findings = plural(len(self.opened) + self.merged, "finding")
            parts = [
                f"{findings} → {self.merged} merged into one task per account → {opened} opened"
            ]
        else:
            parts = [f"{opened} opened"]
        if self.by_playbook:
            parts.append(
                "findings per playbook: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.by_playbook.items()))
            )
        held = [
            (self.deduplicated, "already open"),
            (self.snoozed, "snoozed"),
            (self.cancelled, "cancelled"),
            (self.baseline, "held back on a first scoring"),
            (self.churned, "held back for churned accounts"),
            (self.no_evidence, "refused without evidence"),
        ]
        text = ", ".join(f"{n} {what}" for n, what in held if n)
        if text:
            parts.append(f"not opened: {text}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "opened": list(self.opened),
            "by_playbook": dict(self.by_playbook),
            "triggers": self.triggers,
            "deduplicated": self.deduplicated,
            "snoozed": self.snoozed,
            "cancelled": self.cancelled,
            "merged": self.merged,
            "baseline": self.baseline,
            "churned": self.churned,
            "no_evidence": self.no_evidence,
            "errors": list(self.errors),
        }


def run_playbooks(store: Store, config: Any, *, registry: Any = None) -> PlaybookResult:
    """Evaluate every enabled playbook and fill the outbox; records a run (kind ``playbooks``).

    Completions are not read here: the pusher that created a task reads it back through its
    API during ``hub push`` and the push core records it in the outbox.
    """
    result = PlaybookResult()
    started = time.perf_counter()
    setup = load_playbooks(config, registry)  # config errors surface before a run is recorded
    result.run_id = store.start_run("playbooks")
    now = clock.now()
    try:
        evaluate_all(store, setup, result, now)
    except HubError as exc:
        result.status = "error"
        result.errors.append(str(exc))
    except Exception as exc:  # a bug must still close the run record  # noqa: BLE001
        result.status = "error"
        result.errors.append(f"internal error: {type(exc).__name__}: {exc}")
        log.exception("playbooks run crashed")
    if result.errors and result.status == "ok":
        result.status = "partial"
    result.duration_s = time.perf_counter() - started
    store.finish_run(
        result.run_id,
        status=result.status,
        records=len(result.opened),
        error="; ".join(result.errors)[:2000] or None,
        note=result.note(),
        duration_s=result.duration_s,
    )
    return result


def evaluate_all(
    store: Store, setup: PlaybookSetup, result: PlaybookResult, now: dt.datetime
) -> None:
    """Evaluate, filter, dedupe, merge and write the outbox (each task commits on its own).

    The accounts are taken in batches of ``BATCH`` (by id): each batch gets its own context,
    every playbook runs over it and its tasks are written before the next batch is read, so
    memory is bounded by a batch, not by the workspace. What spans batches is small: the
    blocked keys of active and snoozed tasks, and the keys that fired this run.
    """
    outbox = Outbox(store)
    blocking = outbox.blocking(now)
    fired: set[tuple[str, str, str]] = set()
    failed: set[str] = set()
    opened: set[str] = set()
    playbooks = setup.enabled()
    shared: dict[Any, str] = {}
    try:
        _batches(store, setup, result, now, outbox, blocking, fired, failed, opened, shared)
    finally:
        PlaybookContext(store, now, shared=shared).close()
    # Open (never pushed) tasks whose findings all stopped, or whose playbooks are now off.
    enabled = {pb.name for pb in playbooks}
    evaluated = enabled - failed
    for task in outbox.tasks(["open"]):
        if task["id"] in opened:
            continue
        keys = task_keys(task)
        alive = _account_exists(store, task["account_id"]) and any(
            playbook in enabled and (playbook not in evaluated or key in fired)
            for key in keys
            for playbook in [key[1]]
        )
        if not alive and outbox.cancel(task["id"], now):
            result.cancelled += 1


def _batches(
    store: Store,
    setup: PlaybookSetup,
    result: PlaybookResult,
    now: dt.datetime,
    outbox: Outbox,
    blocking: dict[tuple[str, str, str], str],
    fired: set[tuple[str, str, str]],
    failed: set[str],
    opened: set[str],
    shared: dict[Any, str],
) -> None:
    """Every playbook over each batch of accounts; each batch's tasks written before the next."""
    playbooks = setup.enabled()
    for bounds in account_batches(store, BATCH):
        ctx = PlaybookContext(store, now, bounds=bounds, shared=shared)
        fresh: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for playbook in playbooks:
            if playbook.name in failed:
                continue  # reported once; the other playbooks go on
            triggers = _evaluate(playbook, ctx, result)
            if triggers is None:
                failed.add(playbook.name)
                continue
            for trigger in triggers:
                if not _admit(playbook, trigger, ctx, setup, result):
                    continue
                key = (trigger.account_id, playbook.name, trigger.reason)
                if key in fired:
                    continue  # a playbook yielded the same finding twice
                fired.add(key)
                result.triggers += 1
                why = blocking.get(key)
                if why == "active":
                    result.deduplicated += 1
                    continue
                if why == "snoozed":
                    result.snoozed += 1
                    continue
                fresh[trigger.account_id].append(render_task(playbook, trigger, ctx, setup.section))
                blocking[key] = "active"
        for account_id, rows in fresh.items():
            groups = [rows] if setup.section.one_task_per_account else [[r] for r in rows]
            for group in groups:
                name = ctx.accounts[account_id].get("name") or account_id
                row = merge_rows(group, name)
                outbox.add(row)
                result.opened.append(row["id"])
                opened.add(row["id"])
                result.merged += len(group) - 1
                for reason in row["reasons"]:
                    result.by_playbook[reason["playbook"]] += 1


BATCH = 2000
"""Accounts per batch of a playbooks run (see ``evaluate_all``)."""


def account_batches(store: Store, size: int = BATCH) -> list[tuple[str | None, str | None]]:
    """Id ranges ``[low, high)`` of ``size`` accounts each (the last may be smaller),
    covering every account: the first range is open below, the last open above."""
    starts: list[str] = []
    while True:
        row = store.db.execute(
            "SELECT id FROM accounts WHERE id >= ? ORDER BY id LIMIT 1 OFFSET ?",
            [starts[-1] if starts else "", size],
        ).fetchone()
        if row is None:
            break
        starts.append(row[0])
    edges: list[str | None] = [None, *starts, None]
    return list(zip(edges[:-1], edges[1:]))


def _account_exists(store: Store, account_id: str) -> bool:
    row = store.db.execute("SELECT 1 FROM accounts WHERE id = ?", [account_id]).fetchone()
    return row is not None


def _evaluate(
    playbook: Playbook, ctx: PlaybookContext, result: PlaybookResult
) -> list[Trigger] | None:
    """The playbook's triggers, or None when it failed (reported; the others go on)."""
    try:
        return list(playbook.evaluate(ctx))
    except HubError as exc:
        result.errors.append(f"playbook {playbook.name}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one broken playbook must not stop the others
        result.errors.append(f"playbook {playbook.name} crashed: {type(exc).__name__}: {exc}")
        log.exception("playbook %s crashed", playbook.name)
    return None


def _admit(
    playbook: Playbook,
    trigger: Trigger,
    ctx: PlaybookContext,
    setup: PlaybookSetup,
    result: PlaybookResult,
) -> bool:
    """Churn, baseline and evidence rules; False holds the trigger back (counted)."""
    account_id = trigger.account_id
    if account_id not in ctx.accounts:
        return False
    if ctx.is_churned(account_id) and not playbook.churn:
        result.churned += 1
        return False
    if ctx.is_baseline(account_id):
        if playbook.kind == "state":
            result.baseline += 1
            return False
        if playbook.kind == "event":
            recent = ctx.since(setup.section.baseline_days)
            if trigger.evidence and all(
                e.get("ts") and str(e["ts"]) < recent for e in trigger.evidence
            ):
                result.baseline += 1
                return False
    if not trigger.evidence and not trigger.moved:
        result.no_evidence += 1
        log.warning(
            "playbook %s: finding %r for %s names no evidence; no task opened",
            playbook.name,
            trigger.reason,
            account_id,
        )
        return False
    return True
