"""Property history of HubSpot CRM records: which records need it, what the store already
holds, HubSpot's batch read (50 per request) and the history observed at each sync.

A mixin of ``connectors.hubspot.streams.CrmObjectStream`` (which says when each is used);
split out so that the page loop and the history rules each fit in a module of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.hubspot.common import HISTORY_BATCH, json_body

if TYPE_CHECKING:
    from hub.connector import SyncContext

OBSERVED = "HUB_OBSERVED"
"""``sourceType`` of a history entry the hub recorded from values seen at a sync."""
OBSERVED_PRIOR = "HUB_OBSERVED_PRIOR"
"""``sourceType`` of the value a record held before the first change the hub saw: its date is
only the stored row's last modification (not when the value was set), so mappings read it as
the "from" of that change, never as a change of its own."""


@dataclass
class Stored:
    """What a stored row says about a record's tracked properties."""

    values: list[Any]
    history: dict[str, Any] | None
    updated_at: Any


def entry(value: Any, when: Any, source: str = OBSERVED) -> dict[str, Any]:
    return {"value": value, "timestamp": when, "sourceType": source}


class HistoryMixin:
    """History hooks and reads for a CRM object stream (``tracked()``, ``wants_history``,
    ``history_from_api`` are the stream's)."""

    name: str
    path: str
    object_type: str

    def tracked(self) -> list[str]:
        raise NotImplementedError

    def wants_history(self, record: dict[str, Any]) -> bool:
        raise NotImplementedError

    def history_from_api(self) -> bool:
        raise NotImplementedError

    def _needs_history(self, record: dict[str, Any]) -> bool:
        return (
            "propertiesWithHistory" not in record
            and self.wants_history(record)
            and record["id"] not in self.__dict__.get("_asked", ())
        )

    def _resolve_history(
        self, ctx: SyncContext, live: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Give every record that needs a history what it can have without a request (the
        stored one while its tracked values are unchanged; an observed one); returns those
        left for HubSpot's batch read, in order."""
        names = self.tracked()
        wanted = [r for r in live if self._needs_history(r)]
        if not wanted:
            return []
        stored = self._stored_history(ctx, [r["id"] for r in wanted])
        if not self.history_from_api():
            for record in wanted:
                record["propertiesWithHistory"] = self.observed_history(
                    record, stored.get(record["id"])
                )
            return []
        missing = []
        for record in wanted:
            known = stored.get(record["id"])
            if (
                known is not None
                and known.history is not None
                and known.values == [record["properties"].get(n) for n in names]
            ):
                record["propertiesWithHistory"] = known.history
            else:
                missing.append(record)
        return missing

    def observed_history(
        self, record: dict[str, Any], known: Stored | None
    ) -> dict[str, list[dict[str, Any]]]:
        """The record's history from the values seen at each sync (no request).

        A first sighting starts every list empty: as in HubSpot's own history, the first value
        is no change, and the hub cannot know when it was set. A tracked property that differs
        from the stored row gets the new value, dated at the record's modification time (the
        latest moment the change can have happened), newest first as HubSpot orders it; when
        its list was still empty the stored value goes in first, dated at the stored row's
        modification time and marked ``OBSERVED_PRIOR`` (it says "from", not "when"), so the
        change reads "from → to".
        """
        names = self.tracked()
        if known is None:
            return {n: [] for n in names}
        history = known.history or {}
        out: dict[str, list[dict[str, Any]]] = {}
        for name, old in zip(names, known.values):
            entries = list(history.get(name) or [])
            new = record["properties"].get(name)
            if new != old:
                if not entries and old not in (None, ""):
                    entries.append(entry(old, known.updated_at, OBSERVED_PRIOR))
                entries.insert(0, entry(new, record.get("updatedAt")))
            out[name] = entries
        return out

    def _stored_history(self, ctx: SyncContext, ids: list[str]) -> dict[str, Stored]:
        """Stored live rows' tracked property values and history by id (``history`` is None
        when the row holds no history for every tracked property)."""
        names = self.tracked()
        table = self._stored_table(ctx)
        out: dict[str, Stored] = {}
        if table is None:
            return out
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rid, data in ctx.store.db.execute(
                f"SELECT id, data FROM [{table}] WHERE deleted = 0 AND id IN ({marks})", chunk
            ):
                doc = ctx.store.decode_raw(data)
                history = doc.get("propertiesWithHistory")
                props = doc.get("properties") or {}
                complete = isinstance(history, dict) and all(n in history for n in names)
                out[rid] = Stored(
                    [props.get(n) for n in names],
                    history if complete else None,
                    doc.get("updatedAt"),
                )
        return out

    def _stored_table(self, ctx: SyncContext) -> str | None:
        """The raw table's name, or None when it held no live row as this run began (a first
        read: nothing stored to compare with, so no look-up per page)."""
        if "_table_name" not in self.__dict__:
            name = ctx.store.raw_table(ctx.connection, self.name).name
            found = ctx.store.db.execute(f"SELECT 1 FROM [{name}] WHERE deleted = 0 LIMIT 1")
            self.__dict__["_table_name"] = name if found.fetchone() else None
        return self.__dict__["_table_name"]

    def trim_history(self, history: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """The tracked properties' history in the stored shape (value, timestamp, source)."""
        return {
            name: [
                {
                    "value": e.get("value"),
                    "timestamp": e.get("timestamp"),
                    "sourceType": e.get("sourceType"),
                }
                for e in history.get(name) or []
                if isinstance(e, dict)
            ]
            for name in self.tracked()
        }

    def read_history(
        self, ctx: SyncContext, ids: list[str]
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Each record's history of the tracked properties (batch read, 50 per request).

        Neither search nor a plain list gives history, and a list asking for it pages by 50
        for *every* record; a batch read for the records that need it is cheaper.
        """
        names = self.tracked()
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        path = f"{self.path}/batch/read"
        for start in range(0, len(ids), HISTORY_BATCH):
            chunk = ids[start : start + HISTORY_BATCH]
            body = {
                "inputs": [{"id": i} for i in chunk],
                "properties": [],
                "propertiesWithHistory": names,
            }
            answer = json_body(
                ctx.client.post(path, json=body, idempotent=True),
                f"{self.object_type} history read",
            )
            for result in answer.get("results") or []:
                history = result.get("propertiesWithHistory") or {}
                out[str(result.get("id"))] = self.trim_history(history)
            # Records archived or merged since the page was read come back as errors; the
            # deletes check and the survivor's merge list account for them.
        return out


__all__ = ["OBSERVED", "HistoryMixin", "Stored", "entry"]
