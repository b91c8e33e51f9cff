"""Playbook on the relationship itself: an account at risk that nobody has talked with lately.

Reads the ``csm_touch`` events (calls, e-mails, meetings, notes logged in the CRM; ``two_way``
when the customer took part) and the health rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from hub import clock
from hub.errors import ConfigError
from hub.playbooks import STANDARD_BODY_TAIL, Playbook, PlaybookContext, Trigger
from plugins.playbooks.common import day, fact_evidence, newest_first


class NoRecentTouch(Playbook):
    """An account at risk with no two-way touch in ``days``: a task for its owner to reach out.

    At risk: its health band is one of ``bands`` (default red and yellow) or its computed
    score is below ``below_score`` (0: bands only). No two-way touch: no ``csm_touch`` with
    ``two_way`` (a connected or inbound call, a held meeting, an e-mail from the customer) in
    the last ``days`` days (``segment_days`` may set it per health segment:
    ``{ enterprise = 14 }``); one-way attempts do not count, and are shown as evidence.
    It stays quiet while no touch at all has been synced (no activity scopes, say), so a hub
    without the data never blames every account. The condition persists, so an account gets
    one task (reason ``no_touch``) however long it lasts, and a new one only after that is
    done and its snooze has passed.
    """

    name = "no_recent_touch"
    title = "No recent two-way touch"
    kind = "presence"
    options = {
        "days": 30,
        "bands": ["red", "yellow"],
        "below_score": 0,
        "lookback_days": 365,
        "segment_days": {},
    }
    # MEDIUM: a nudge, not an emergency; the caps let payment and renewal tasks go first.
    defaults = {"priority": "MEDIUM", "due_in_days": 3}
    subject = "Reach out to {account_name}: no two-way touch in {quiet_for}"
    body = (
        "{account_name} is {band} ({score}) and nobody has talked with them in {quiet_for} "
        "(last two-way touch: {last_touch_on}; target every {target_days} days). "
        "Call them or set up a meeting." + STANDARD_BODY_TAIL
    )
    placeholders = ("quiet_for", "last_touch_on", "target_days")

    @classmethod
    def validate(cls, raw: dict[str, Any], *, where: str) -> dict[str, Any]:
        out = super().validate(raw, where=where)
        table = out["segment_days"]
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
            for k, v in table.items()
        ):
            raise ConfigError(
                f"{where}: segment_days must be a table of segment name = days (whole, ≥ 1)",
                hint="segment_days = { enterprise = 14 }",
            )
        if out["days"] < 1:
            raise ConfigError(f"{where}: days must be at least 1", hint="days = 30")
        return out

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        lookback = max(self.opt("lookback_days"), self.opt("days"))
        touches = ctx.events(["csm_touch"], days=lookback)
        if not touches:
            return  # no activity data at all: nothing to judge by
        bands = set(self.opt("bands"))
        below = self.opt("below_score")
        per_segment = self.opt("segment_days")
        for account_id, health in sorted(ctx.health.items()):
            computed = health.get("computed_score")
            computed = health.get("score") if computed is None else computed
            at_risk = health.get("band") in bands or (
                below > 0 and computed is not None and computed < below
            )
            if not at_risk:
                continue
            target = per_segment.get(str(health.get("segment") or ""), self.opt("days"))
            events = touches.get(account_id, [])
            two_way = [e for e in events if e["attrs"].get("two_way") is True]
            last = two_way[-1] if two_way else None
            if last is not None:
                quiet = (ctx.today - _date(last["ts"], ctx.today)).days
                if quiet < target:
                    continue
                quiet_for = f"{quiet} days"
                detail = (
                    f"no two-way touch in {quiet} days (target {target}; last {day(last['ts'])})"
                )
            else:
                quiet_for = f"over {lookback} days"
                detail = f"no two-way touch in the last {lookback} days (target {target})"
            attempts = [e for e in newest_first(events) if e is not last][:3]
            evidence = ([last] if last else []) + attempts
            if not evidence:
                evidence = [fact_evidence(f"no CSM touch logged in the last {lookback} days")]
            yield Trigger(
                account_id,
                reason="no_touch",
                detail=detail,
                evidence=evidence,
                values={
                    "quiet_for": quiet_for,
                    "last_touch_on": day(last["ts"]) if last else "none logged",
                    "target_days": target,
                },
            )


def _date(ts: str, fallback: dt.date) -> dt.date:
    parsed = clock.parse(ts)
    return parsed.date() if parsed is not None else fallback


__all__ = ["NoRecentTouch"]
