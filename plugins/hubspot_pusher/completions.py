"""Reading completions back: which tasks the pusher created are done in HubSpot.

One implementation: the pusher asks HubSpot (batch read of its tasks, 100 per request);
the push core records the answer in the outbox and starts the snooze. A task deleted in
HubSpot counts as dismissed, i.e. completed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub import clock
from plugins.hubspot_pusher.client import HubSpotApi


class TaskCompletions(HubSpotApi):
    """The ``read_completions`` step of the HubSpot pusher."""

    def read_completions(self, tasks: list[dict[str, Any]]) -> dict[str, dt.datetime | None]:
        by_remote = {str(t["remote_id"]): t["id"] for t in tasks if t.get("remote_id")}
        done: dict[str, dt.datetime | None] = {}
        records = self.batch_read(
            "tasks", list(by_remote), ["hs_task_status", "hs_task_completion_date"]
        )
        for record in records:
            error = record.get("_error")
            if error is not None:
                if error.get("category") == "OBJECT_NOT_FOUND":
                    for rid in (error.get("context") or {}).get("ids") or []:
                        if str(rid) in by_remote:
                            done.setdefault(by_remote[str(rid)], None)  # deleted: dismissed
                continue
            props = record.get("properties") or {}
            rid = str(record.get("id"))
            if rid in by_remote and str(props.get("hs_task_status") or "").upper() == "COMPLETED":
                done[by_remote[rid]] = _when(props.get("hs_task_completion_date"))
        return done


def _when(value: Any) -> dt.datetime | None:
    try:
        return clock.parse(value)
    except (TypeError, ValueError):
        return None
