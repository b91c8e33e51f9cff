"""A standard helper for testing playbooks: a small world of accounts, health and events.

A playbook reads accounts, health scores, their daily history and timeline events; this
helper writes exactly those rows into a real ``Store`` (no mocks), pins "now", and runs the
real engine, so a plugin author tests a rule the way the hub runs it::

    from hub.testing.playbooks import PlaybookWorld

    def test_slow_tickets_fires(tmp_path):
        world = PlaybookWorld(tmp_path / "hub.db")
        world.account("acme", score=55, band="yellow")
        world.event("acme", "ticket_solved", days_ago=2, hours=70)
        triggers = world.evaluate(SlowTickets, hours=48)
        assert [t.account_id for t in triggers] == ["acme"]
        tasks = world.run({"slow_tickets": {"hours": 48}})   # the outbox rows it opened
        assert "Evidence:" in tasks[0]["body"]

By default an account has a history of ``history_days`` days at its current score, so it is
past its baseline (the first scoring opens no band or score task); pass ``history=[]`` to
test a first scoring.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from hub import clock
from hub.playbooks import Outbox, Playbook, PlaybookContext, Trigger, run_playbooks
from hub.store import Store

DEFAULT_NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


class PlaybookWorld:
    """Accounts, health rows and events in a real store, at a pinned ``now``."""

    def __init__(
        self,
        db: Store | str | Path,
        *,
        now: dt.datetime = DEFAULT_NOW,
        history_days: int = 10,
        registry: Any = None,
    ):
        self.store = db if isinstance(db, Store) else Store(db)
        self.now = now
        self.history_days = history_days
        self.registry = registry
        self._seq = 0
        clock.set_source(lambda: self.now)

    def close(self) -> None:
        clock.set_source(None)

    def ago(self, days: float) -> str:
        return clock.iso(self.now - dt.timedelta(days=days))

    def account(
        self,
        account_id: str,
        *,
        score: int | None = 85,
        band: str = "green",
        trend_7d: int | None = 0,
        history: list[tuple[int, int, str]] | None = None,
        measures: dict[str, Any] | None = None,
        renewal: str | None = "2027-06-01",
        owner: str | None = "70000001",
        mrr: float = 450.0,
        facts: dict[str, Any] | None = None,
        drivers: list[str] | None = None,
        **columns: Any,
    ) -> None:
        """One account with its current health row; ``history`` = [(days ago, score, band)]
        (computed scores; default: ``history_days`` days at ``score``)."""
        base = {"has_payment_method": True, "card_expires": "2028-01", "widget_present": True}
        base.update(facts or {})
        self.store.db["accounts"].insert(
            {
                "id": account_id,
                "name": f"Company {account_id}",
                "domain": f"{account_id}.example",
                "owner_id": owner,
                "mrr": mrr,
                "seats": 10,
                "renewal_date": renewal,
                "facts": json.dumps(base),
                **columns,
            },
            alter=True,
        )
        if score is None:
            return
        self.store.db["health_scores"].insert(
            {
                "account_id": account_id,
                "score": score,
                "computed_score": score,
                "band": band,
                "model": "default",
                "segment": "smb",
                "drivers": json.dumps(drivers or ["all quiet"]),
                "measures": json.dumps(measures or {}),
                "trend_7d": trend_7d,
                "trend_30d": 0,
                "computed_at": clock.iso(self.now),
            },
            alter=True,
        )
        rows = (
            history
            if history is not None
            else [(d, score, band) for d in range(self.history_days, -1, -1)]
        )
        for days, s, b in rows:
            self.history_row(account_id, days, s, b)

    def history_row(
        self,
        account_id: str,
        days_ago: int,
        score: int,
        band: str,
        *,
        measures: dict[str, Any] | None = None,
    ) -> None:
        """One day of health history (the computed score; ``measures`` as the engine keeps)."""
        row: dict[str, Any] = {
            "account_id": account_id,
            "day": (self.now.date() - dt.timedelta(days=days_ago)).isoformat(),
            "score": score,
            "band": band,
            "computed_score": score,
        }
        if measures is not None:
            row["measures"] = json.dumps(measures)
        self.store.db["health_history"].insert(row, replace=True, alter=True)

    def event(self, account_id: str, etype: str, days_ago: float, **attrs: Any) -> str:
        """One timeline event; returns its id."""
        self._seq += 1
        event_id = f"test:{etype}:{self._seq}"
        self.store.db["events"].insert(
            {
                "id": event_id,
                "entity": f"test:thing:{account_id}",
                "account_id": account_id,
                "ts": self.ago(days_ago),
                "source": "test",
                "type": etype,
                "summary": f"{etype.replace('_', ' ')} happened",
                "attrs": json.dumps(attrs),
                "link": f"https://example.test/{etype}/{self._seq}",
                "mapped_at": clock.iso(self.now),
            }
        )
        return event_id

    def evaluate(self, playbook: type[Playbook], **options: Any) -> list[Trigger]:
        """The raw triggers of one playbook (before the engine's dedupe and discipline)."""
        return list(playbook(options).evaluate(PlaybookContext(self.store, self.now)))

    def run(self, playbooks: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run every registered playbook with ``[playbooks]`` = ``playbooks``; the tasks it opened."""
        from hub.config import parse_config

        config = parse_config({"playbooks": playbooks or {}})
        result = run_playbooks(self.store, config, registry=self.registry)
        assert result.status != "error", result.errors
        opened = set(result.opened)
        return [t for t in Outbox(self.store).tasks() if t["id"] in opened]


__all__ = ["DEFAULT_NOW", "PlaybookWorld"]
