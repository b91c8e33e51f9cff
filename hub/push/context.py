"""``PushContext``: what the push core gives every pusher, whatever the CRM.

* ``health_values()``: per scored account, the health fields as text (score, band, trends,
  drivers, model, segment, coverage, the override in effect) with the account row, so the
  pusher finds its own record id for it (``Pusher.object_id``);
* ``linked_ids(source, kind)``: account → ids of linked source records (identity links), for
  pushers whose records are not the account's own key;
* the push log (``_hub_push_log``): ``logged()`` says what was last written successfully per
  record and property, ``record()`` stores new successes, ``forget()`` drops some; a pusher
  writes a value only when it differs from the log, so a re-run with nothing changed writes
  nothing;
* the task outbox (``hub.playbooks.Outbox``) whose conditional ``open → pushing → pushed``
  transitions a pusher commits around each create, so a task is created once;
* ``evidence_events(task)``: the timeline events behind a task (with their attrs);
* ``write_guard()``: a dry run may read the CRM but never writes it nor the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub import clock
from hub.errors import PushError
from hub.playbooks import Outbox
from hub.push.results import PushResult
from hub.push.settings import PushSettings
from hub.store import Store
from hub.store.queries import decode_json

HEALTH_FIELDS = (
    "score",
    "band",
    "trend_7d",
    "trend_30d",
    "drivers",
    "updated_at",
    "model",
    "segment",
    "override",
    "override_reason",
    "override_until",
    "coverage",
    "top_driver",
)
"""The health fields every pusher gets from ``health_values()`` (values are text, "" = unset)."""


@dataclass
class PushContext:
    """What a pusher works with: store, config, settings, the outbox, the result, the clock."""

    store: Store
    config: Any
    settings: PushSettings
    result: PushResult
    dry_run: bool = False
    transport: httpx.BaseTransport | None = None
    now: dt.datetime = field(default_factory=clock.now)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.store)
        self._accounts: dict[str, dict[str, Any]] | None = None

    # guard ------------------------------------------------------------------------------

    def write_guard(self, what: str) -> None:
        """Raise if a dry run is about to write (a pusher bug, never a user error)."""
        if self.dry_run:
            raise PushError(f"internal error: a dry run tried to write ({what})")

    # accounts and health ----------------------------------------------------------------

    def accounts(self) -> dict[str, dict[str, Any]]:
        """Accounts by id (``facts`` left as JSON text); read once per push."""
        if self._accounts is None:
            self._accounts = {
                r["id"]: dict(r) for r in self.store.db.query("SELECT * FROM accounts")
            }
        return self._accounts

    def linked_ids(self, source: str, kind: str) -> dict[str, list[str]]:
        """account id → ids of its linked ``source``/``kind`` records (e.g. organizations;
        one customer may have several)."""
        out: dict[str, list[str]] = {}
        for row in self.store.db.query(
            "SELECT account_id, source_id FROM account_links "
            "WHERE source = ? AND kind = ? AND account_id IS NOT NULL ORDER BY entity",
            [source, kind],
        ):
            out.setdefault(row["account_id"], []).append(str(row["source_id"]))
        return out

    def health_values(self) -> dict[str, dict[str, Any]]:
        """Per scored account: ``{"name", "account": row, "values": {field: text}}``."""
        out: dict[str, dict[str, Any]] = {}
        accounts = self.accounts()
        limit = self.settings.drivers_max_chars
        for row in self.store.db.query("SELECT * FROM health_scores ORDER BY account_id"):
            account = accounts.get(row["account_id"])
            if account is None or row["score"] is None:
                continue
            drivers = decode_json(row["drivers"], [])
            if isinstance(drivers, list):
                drivers_text = "; ".join(str(d) for d in drivers if d)
                top_driver = next((str(d) for d in drivers if d), "")
            else:
                drivers_text = top_driver = str(drivers or "")
            if len(drivers_text) > limit:
                drivers_text = drivers_text[: limit - 1].rstrip() + "…"
            # The health engine keeps override_* only while the override is in force.
            active = row["override_value"] is not None
            values = {
                "score": _int_text(row["score"]),
                "band": str(row["band"] or "").lower(),
                "trend_7d": _int_text(row["trend_7d"]),
                "trend_30d": _int_text(row["trend_30d"]),
                "drivers": drivers_text,
                "updated_at": ms_iso(row["computed_at"]),
                "model": str(row["model"] or ""),
                "segment": str(row["segment"] or ""),
                "override": _int_text(row["override_value"]) if active else "",
                "override_reason": str(row["override_reason"] or "") if active else "",
                "override_until": _date_text(row["override_until"]) if active else "",
                # Share of the model's weight that had data, 0–1 stored, shown as a percentage.
                "coverage": _int_text(
                    None if row.get("coverage") is None else float(row["coverage"]) * 100
                ),
                # The one reason that moves the score most, for fields that hold one line.
                "top_driver": top_driver[:limit],
            }
            out[row["account_id"]] = {
                "name": account.get("name") or "",
                "account": account,
                "values": values,
            }
        return out

    # push log ----------------------------------------------------------------------------

    def logged(self, target: str, object_type: str) -> dict[str, dict[str, str]]:
        """object id → {property: value last written successfully}."""
        out: dict[str, dict[str, str]] = {}
        for row in self.store.db.execute(
            "SELECT object_id, property, value FROM _hub_push_log WHERE target = ? AND object_type = ?",
            [target, object_type],
        ):
            out.setdefault(row[0], {})[row[1]] = row[2] if row[2] is not None else ""
        return out

    def record(self, target: str, object_type: str, values: dict[str, dict[str, str]]) -> None:
        """Store successful writes (object id → {property: value}) in one transaction."""
        self.write_guard("push log")
        at = clock.iso()
        rows = [
            (target, object_type, oid, prop, value, at)
            for oid, props in values.items()
            for prop, value in props.items()
        ]
        if not rows:
            return
        with self.store.db.atomic():
            self.store.db.conn.executemany(
                "INSERT INTO _hub_push_log (target, object_type, object_id, property, value, pushed_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(target, object_type, object_id, property) "
                "DO UPDATE SET value = excluded.value, pushed_at = excluded.pushed_at",
                rows,
            )

    def forget(
        self,
        target: str,
        object_type: str,
        *,
        object_id: str | None = None,
        prop: str | None = None,
    ) -> None:
        """Drop log rows (all, one object's or one property's) so those values are sent again."""
        self.write_guard("push log")
        where, params = "target = ? AND object_type = ?", [target, object_type]
        if object_id is not None:
            where, params = where + " AND object_id = ?", [*params, object_id]
        if prop is not None:
            where, params = where + " AND property = ?", [*params, prop]
        with self.store.db.atomic():
            self.store.db.execute(f"DELETE FROM _hub_push_log WHERE {where}", params)

    # tasks --------------------------------------------------------------------------------

    def evidence_events(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        """The timeline events a task's evidence names (``id``, ``entity``, ``source``,
        ``type``, ``attrs``…), so a pusher can tie the task to the records behind them."""
        from hub.store.push_preview import events_by_id

        evidence = task.get("evidence")
        if isinstance(evidence, str):
            evidence = decode_json(evidence, [])
        ids = [str(e["id"]) for e in evidence or [] if isinstance(e, dict) and e.get("id")]
        return events_by_id(self.store, ids) if ids else []

    def owner_for(
        self, task: dict[str, Any], account: dict[str, Any] | None, fallback: str | None = None
    ) -> str | None:
        """Current account owner, else the owner stored with the task, else ``fallback``."""
        owner = (account or {}).get("owner_id") or task.get("owner_id")
        return str(owner) if owner else fallback


# -- helpers ------------------------------------------------------------------------------------


def _int_text(value: Any) -> str:
    if value is None or value == "":
        return ""
    try:
        return str(int(round(float(value))))
    except (TypeError, ValueError):
        return ""


def _date_text(value: Any) -> str:
    """YYYY-MM-DD of a date or datetime text ("" when unset or unreadable)."""
    if value in (None, ""):
        return ""
    text = str(value)
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return ""


def ms_iso(value: Any) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z`` ("" when unset or unreadable)."""
    try:
        parsed = clock.parse(value) if value not in (None, "") else None
    except ValueError:
        parsed = None
    if parsed is None:
        return ""
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"
