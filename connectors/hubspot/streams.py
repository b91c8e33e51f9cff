"""How HubSpot CRM objects are read: the one strategy every object stream shares.

The concrete streams (owners, companies, contacts, deals, tasks) are declared in
``connectors.hubspot.objects``; the activity streams in ``connectors.hubspot.engagements``.
The CRM object streams share one strategy (``CrmObjectStream``):

- **First run (or a forced full refresh)**: page the list endpoint
  (``GET /crm/v3/objects/{type}?limit=100``) and then its archived twin (``archived=true``,
  stored as deletes). Each page commits with a ``resume`` position, so a killed run continues
  where it stopped.
- **Later runs**: the search endpoint on the modification time (``hs_lastmodifieddate``;
  contacts ``lastmodifieddate``), ascending, 200 per request, **as a keyset**: every request
  is a fresh query starting at the last time seen, never an ``after`` offset (after the
  newest-first probe described under Deletes, when more changed than fits its page). That keeps
  every result set far below the 10,000 HubSpot lets one query page through, and a record
  modified while we read (it moves to the end) can never shift a neighbour out of view, which
  offset paging can. The bookmark is the pair (time, id): everything modified before
  ``bookmark``, or at it with an id up to ``bookmark_id``, is stored. A full page whose every
  record has the same time switches to that instant sorted by ``hs_object_id`` (a bulk
  update can stamp thousands of records with one millisecond), then moves on. With nothing
  new the run is a single search request.
- **Deletes**: search never returns archived records, and archiving does not show up as a
  modification. Each incremental run therefore starts with one search for everything,
  newest first (``KeysetSearch(probe=True)``): its first page usually holds every change
  since the bookmark, and its ``total`` is the live count in HubSpot. When fewer records are
  live upstream than stored, the archived list is read in the same run, so an archived
  company is seen within one sync interval while a sync with no change stays one request.
  The archived list is also re-read every ``deletes_every_hours`` as a safety net (and on
  every full read). Archived records become ``deleted`` rows.
- **Merges**: a merged-away company disappears from lists and search; the survivor lists it
  in ``hs_merged_object_ids`` (``a;b``). Whenever a survivor is read, each merged-away id is
  written as a deleted row whose data says ``{"merged_into": survivor}``; identity remaps it.
- **Company links** of deals and tasks come from the v4 association batch read (up to 1,000
  ids per request), once per page of changed records, and are stored in the record as
  ``associations.companies`` (the same shape whichever way the record was read, so a full
  read and an incremental one store identical rows).
- **Property history**: the raw row keeps only a record's latest state, so the timeline's
  "changed from → to" events (lifecycle stage, owner, NPS; the moment a contact opted out)
  come from HubSpot's own history, stored as ``propertiesWithHistory`` in the record. Every
  company needs it, so a first read lists companies with ``propertiesWithHistory`` (50 per
  page: 2 requests per 100 companies instead of a list of 100 plus two batch reads of 50);
  changed records found by search, and the few contacts that opted out, get it from a batch
  read (50 ids per request) of just those records; a first read holds its pages until their
  records fill whole batches (a partial one waits for the next pages' records), so it costs
  the fewest batch reads the API allows. A stream may instead keep an *observed*
  history (companies with ``company_history = false``): no history is requested, and when a
  tracked property holds a different value than the stored row, the change is recorded in the
  same shape (``sourceType`` ``HUB_OBSERVED``): the old value at the stored row's modification
  time (when it had no entries yet), the new one at the record's.

Records keep HubSpot's ``SimplePublicObject`` shape (``id``, ``properties`` with string or null
values, ``createdAt``, ``updatedAt``, ``archived``, ``archivedAt``), reduced to the requested
properties so the two read paths agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from connectors.hubspot.common import (
    ASSOC_BATCH,
    HISTORY_BATCH,
    LIST_LIMIT,
    SEARCH_LIMIT,
    json_body,
    ms_iso,
    numeric_id,
    read_links,
    server_ms,
    to_ms,
)
from connectors.hubspot.history import OBSERVED, HistoryMixin
from hub import clock
from hub.connector import Page, Stream, SyncContext
from hub.errors import FatalAPIError, HubError
from hub.http.pagination import dig
from hub.http.readahead import ReadAhead
from hub.http.replay import KeysetSearch
from hub.store import RawRecord

HELD_ROWS = 2000
"""A first read holds at most this many listed rows while it gathers a full history or links
request for them (contacts: one history read per ~50 opted-out contacts, not one per page)."""


class _PageBatch:
    """One listed page's normalised records, until their links and history are in."""

    def __init__(self, records: list[dict[str, Any]], archived: bool):
        self.records = records
        self.archived = archived

    def rows(self) -> list[RawRecord]:
        """The page's rows, with a merge tombstone for each id a survivor absorbed."""
        out = [
            RawRecord(
                id=r["id"],
                data=r,
                updated_at=r["updatedAt"],
                deleted=self.archived or r["archived"],
            )
            for r in self.records
        ]
        if self.archived:
            return out
        for record in self.records:
            merged = record["properties"].get("hs_merged_object_ids") or ""
            for gone in (x.strip() for x in merged.split(";")):
                if gone and gone != record["id"]:
                    tombstone = {"id": gone, "merged_into": record["id"], "archived": True}
                    out.append(
                        RawRecord(
                            id=gone, data=tombstone, updated_at=record["updatedAt"], deleted=True
                        )
                    )
        return out


def _newest(records: list[Any]) -> list[tuple[int, int]]:
    """Candidates for the newest (time, id) on a page: the latest of the records whose
    ``updatedAt`` is HubSpot's canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (which sorts as text, so
    only that one is parsed), plus every record written any other way."""
    out: list[tuple[int, int]] = []
    best: tuple[str, int] | None = None
    for record in records:
        if type(record) is not dict:
            continue
        when = record.get("updatedAt")
        if type(when) is str and len(when) == 24 and when[10] == "T" and when[23] == "Z":
            key = (when, numeric_id(record))
            if best is None or key > best:
                best = key
        else:
            ms = to_ms(when)
            if ms is not None:
                out.append((ms, numeric_id(record)))
    if best is not None:
        ms = to_ms(best[0])
        if ms is not None:
            out.append((ms, best[1]))
    return out


class CrmObjectStream(HistoryMixin, Stream):
    """A CRM object type read by list (first run) and keyset search (later runs)."""

    object_type: ClassVar[str] = ""
    modified_property: ClassVar[str] = "hs_lastmodifieddate"
    created_property: ClassVar[str] = "createdate"
    base_properties: ClassVar[list[str]] = []
    extra_setting: ClassVar[str | None] = None  # settings field with extra properties to read
    company_links: ClassVar[bool] = False  # read company associations (deals, tasks)
    merges: ClassVar[bool] = False  # read hs_merged_object_ids and write merge tombstones
    history_properties: ClassVar[list[str]] = []  # properties whose change history is kept
    # Every record wants its history: a first read lists it along (propertiesWithHistory).
    list_with_history: ClassVar[bool] = False

    incremental = KeysetSearch(page_limit=SEARCH_LIMIT, probe=True)
    primary_key = "id"
    cursor_field = "updatedAt"
    records_path = "results"

    def properties(self) -> list[str]:
        """The properties requested, in a stable order (the stored rows depend on it)."""
        names = [
            "hs_object_id",
            self.created_property,
            self.modified_property,
            *self.base_properties,
        ]
        if self.merges:
            names.append("hs_merged_object_ids")
        if self.extra_setting:
            names.extend(getattr(self.settings, self.extra_setting) or [])
        return list(dict.fromkeys(n for n in names if n))

    def history_names(self) -> list[str]:
        """Properties read with their history (``propertiesWithHistory``)."""
        return list(self.history_properties)

    def wants_history(self, record: dict[str, Any]) -> bool:
        """Whether this record's history is worth a request (all, unless a stream narrows it)."""
        return True

    def history_from_api(self) -> bool:
        """Whether history is HubSpot's (listed or batch-read) rather than observed at syncs."""
        return True

    def requested(self) -> list[str]:
        """``properties()``, worked out once per run (every record is reduced to it)."""
        found = self.__dict__.get("_requested")
        if found is None:
            found = self.__dict__["_requested"] = self.properties()
        return found

    def tracked(self) -> list[str]:
        """``history_names()``, worked out once per run."""
        found = self.__dict__.get("_tracked")
        if found is None:
            found = self.__dict__["_tracked"] = self.history_names()
        return found

    # -- records ----------------------------------------------------------------------------

    def normalize(self, record: dict[str, Any], props: list[str]) -> dict[str, Any]:
        """HubSpot's object reduced to the requested properties (same from list and search)."""
        values = record.get("properties") or {}
        out: dict[str, Any] = {
            "id": str(record.get("id")),
            "properties": dict(zip(props, map(values.get, props))),
            "createdAt": record.get("createdAt"),
            "updatedAt": record.get("updatedAt"),
            "archived": bool(record.get("archived")),
        }
        if record.get("archivedAt"):
            out["archivedAt"] = record["archivedAt"]
        return out

    def records_to_raw(
        self,
        ctx: SyncContext,
        records: list[Any],
        *,
        page: int | None = None,
        archived: bool = False,
    ) -> list[RawRecord]:
        """Normalised rows with links and history; records without an id are reported."""
        batch = self.prepare_page(ctx, records, page=page, archived=archived)
        self.complete(ctx, [batch])
        return batch.rows()

    def prepare_page(
        self,
        ctx: SyncContext,
        records: list[Any],
        *,
        page: int | None = None,
        archived: bool = False,
    ) -> _PageBatch:
        """A page normalised, with the history it was listed with; links and the remaining
        history come from ``complete`` (which may serve several pages with one request)."""
        props, normalize, trim = self.requested(), self.normalize, self.trim_history
        normalized = []
        for record in self.usable(ctx, records, page=page):
            row = normalize(record, props)
            history = record.get("propertiesWithHistory")
            if isinstance(history, dict):
                row["propertiesWithHistory"] = trim(history)
            normalized.append(row)
        return _PageBatch(normalized, archived)

    def complete(self, ctx: SyncContext, batches: list[_PageBatch]) -> None:
        """Company links and property history for the pages' records, each read in as few
        requests as the API allows across all of them.

        History is read only for records that want it and were not listed with it; a record
        whose tracked properties hold the values already stored keeps the stored history (a
        history changes only when its property does), so an incremental read asks HubSpot for
        the history of the records whose tracked properties changed, and no other.
        """
        live = [r for b in batches if not b.archived for r in b.records]
        if not live:
            return
        if self.company_links:
            links = self.read_company_links(ctx, [r["id"] for r in live])
            for record in live:
                record["associations"] = {"companies": links.get(record["id"], [])}
        if not self.tracked():
            return
        missing = self._resolve_history(ctx, live)
        histories = self.read_history(ctx, [r["id"] for r in missing])
        for record in missing:
            if record["id"] in histories:
                record["propertiesWithHistory"] = histories[record["id"]]

    def read_company_links(self, ctx: SyncContext, ids: list[str]) -> dict[str, list[str]]:
        """Company ids associated with each record (v4 batch read; 207 = some have none)."""
        return read_links(ctx, self.object_type, ids, "companies")

    # -- the page loop ------------------------------------------------------------------------

    # -- KeysetSearch hooks -------------------------------------------------------------------

    def keyset_time(self, value: Any) -> int | None:
        return to_ms(value)

    def keyset_text(self, ms: int) -> str:
        return ms_iso(ms)

    def keyset_key(self, record: dict[str, Any]) -> tuple[int | None, int]:
        return to_ms(record.get("updatedAt")), numeric_id(record)

    def keyset_query(
        self, ctx: SyncContext, t: int, x: int, mode: str
    ) -> tuple[list[Any], int | None]:
        """One search request: the filter groups and sort for the keyset position."""
        modified = self.modified_property
        if mode == "newest":
            body = self._search(ctx, [], modified, direction="DESCENDING")
            total = body.get("total")
            return list(body.get("results") or []), total if isinstance(total, int) else None
        if mode == "tie":
            groups = [[
                {"propertyName": modified, "operator": "EQ", "value": str(t)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": str(x)},
            ]]  # fmt: skip
            sort = "hs_object_id"
        elif mode == "after":
            groups = [
                [{"propertyName": modified, "operator": "EQ", "value": str(t)},
                 {"propertyName": "hs_object_id", "operator": "GT", "value": str(x)}],
                [{"propertyName": modified, "operator": "GT", "value": str(t)}],
            ]  # fmt: skip
            sort = modified
        else:
            groups = [[{"propertyName": modified, "operator": "GTE", "value": str(t)}]]
            sort = modified
        body = self._search(ctx, groups, sort)
        total = body.get("total")
        return list(body.get("results") or []), total if isinstance(total, int) else None

    def after_keyset_due(
        self, ctx: SyncContext, state: dict[str, Any], live_total: int | None
    ) -> bool:
        """Read the archived list when the live count says something left, or when due."""
        if live_total is not None:
            table = ctx.store.raw_table(ctx.connection, self.name).name
            (stored,) = ctx.store.db.execute(
                f"SELECT count(*) FROM [{table}] WHERE deleted = 0"
            ).fetchone()
            if stored > live_total:
                ctx.note(
                    f"{self.name}: {stored - live_total} fewer live in HubSpot than stored; "
                    "reading the archived list"
                )
                return True
        return self._deletes_due(ctx, state)

    def after_keyset(
        self, ctx: SyncContext, state: dict[str, Any], resume: dict[str, Any] | None
    ) -> Iterator[Page]:
        yield from self._archived(ctx, state, (resume or {}).get("after"), final=True)

    def full_pages(self, ctx: SyncContext, resume: dict[str, Any]) -> Iterator[Page]:
        """The first run: the list endpoint, then its archived twin (a list, not a search).

        Its own loop because it is two listings in one resumable pass whose bookmark is the
        newest record seen, capped at the server's clock when the read began.
        """
        yield from self._full_read(ctx, resume)

    def _full_read(self, ctx: SyncContext, resume: dict[str, Any]) -> Iterator[Page]:
        pending: list[tuple[_PageBatch, dict[str, Any], bool]] = []
        pages = self._full_pages(ctx, resume)
        while True:
            try:
                batch, state, done = next(pages)
            except StopIteration:
                break
            except HubError:
                # The next page failed: the pages held so far are stored first, so the next run
                # resumes after them, as it would without holding.
                yield from self._flush(ctx, pending)[0]
                raise
            pending.append((batch, state, done))
            if done or ctx.stop.is_set():
                ready, pending = self._flush(ctx, pending)
                yield from ready
            elif self._flush_due([b for b, _, _ in pending]):
                ready, pending = self._flush(ctx, pending, final=False)
                yield from ready
            if ctx.stop.is_set():
                return
        yield from self._flush(ctx, pending)[0]

    def _flush_due(self, batches: list[_PageBatch]) -> bool:
        """Whether the held pages fill a history or a links request (or hold enough rows)."""
        live = [r for b in batches if not b.archived for r in b.records]
        if len(live) >= HELD_ROWS:
            return True
        if self.company_links and len(live) >= ASSOC_BATCH:
            return True
        if not self.tracked():
            return False
        if not self.history_from_api():
            return not self.company_links  # observed history costs no request to gather
        wanted = sum(1 for r in live if self._needs_history(r))
        return wanted >= HISTORY_BATCH

    def _flush(
        self,
        ctx: SyncContext,
        pending: list[tuple[_PageBatch, dict[str, Any], bool]],
        *,
        final: bool = True,
    ) -> tuple[list[Page], list[tuple[_PageBatch, dict[str, Any], bool]]]:
        """Complete held pages together and hand them on in order, each with its own bookmark
        (a crash before a page commits reads it again, as without holding); returns the pages
        ready and those still held.

        Not ``final``: history is read in whole batches only; the pages from the first record
        left over wait for the next flush, so a partial batch is merged with the next pages'
        records instead of costing a request of its own (unless the held rows reach
        ``HELD_ROWS`` without a whole batch, which bounds memory)."""
        if not pending:
            return [], []
        batches = [b for b, _, _ in pending]
        count = len(pending)
        if not final and self.tracked() and self.history_from_api():
            live = [r for b in batches if not b.archived for r in b.records]
            missing = self._resolve_history(ctx, live)
            take = len(missing) - len(missing) % HISTORY_BATCH
            if not take and len(live) >= HELD_ROWS:
                take = len(missing)
            chosen = missing[:take]
            histories = self.read_history(ctx, [r["id"] for r in chosen])
            asked = self.__dict__.setdefault("_asked", set())
            for record in chosen:
                if record["id"] in histories:
                    record["propertiesWithHistory"] = histories[record["id"]]
                else:
                    # Archived or merged since it was listed: no history comes for it, and
                    # its page is not held waiting for one.
                    asked.add(record["id"])
            count = 0
            for batch in batches:
                if not batch.archived and any(self._needs_history(r) for r in batch.records):
                    break
                count += 1
        self.complete(ctx, batches[:count])
        ready = [Page(b.rows(), state, done=done) for b, state, done in pending[:count]]
        return ready, pending[count:]

    def _full_pages(
        self, ctx: SyncContext, resume: dict[str, Any]
    ) -> Iterator[tuple[_PageBatch, dict[str, Any], bool]]:
        """The list pages, normalised, each with the bookmark that follows it.

        The next page's request goes out (``ReadAhead``) as soon as this page's cursor is
        known, before this page is normalised and stored: HubSpot renders it meanwhile.
        """
        phase = resume.get("phase", "live")
        after = resume.get("after")
        high, high_id, started = (
            resume.get("high"),
            resume.get("high_id", -1),
            resume.get("started"),
        )
        props = ",".join(self.requested())
        with ReadAhead(ctx.client) as ahead:
            while True:
                response = ahead.get(self.path, self._list_params(phase, after, props))
                if started is None:
                    started = server_ms(response)
                body = json_body(response, f"{self.object_type} list")
                records = body.get("results") or []
                nxt = dig(body, "paging.next.after")
                last = False
                if nxt in (None, "") and phase == "live":
                    next_phase, nxt = "archived", None
                elif nxt in (None, ""):
                    last = True
                elif nxt == after:
                    raise FatalAPIError(
                        f"HubSpot {self.object_type} list returned the same page cursor twice"
                    )
                else:
                    next_phase = phase
                if not last and not ctx.stop.is_set():
                    ahead.send(self.path, self._list_params(next_phase, nxt, props))
                batch = self.prepare_page(ctx, records, archived=phase == "archived")
                if phase == "live":
                    for ms, rid in _newest(records):
                        if high is None or (ms, rid) > (high, high_id):
                            high, high_id = ms, rid
                if last:
                    yield batch, self._after_full_read(high, high_id, started), True
                    return
                phase, after = next_phase, nxt
                position = {
                    "full": True,
                    "phase": phase,
                    "after": after,
                    "high": high,
                    "high_id": high_id,
                    "started": started,
                }
                yield batch, {"resume": position}, False
                if ctx.stop.is_set():
                    return

    def _list_params(self, phase: str, after: str | None, props: str) -> dict[str, Any]:
        """One list request's query: live or archived, from ``after``."""
        params: dict[str, Any] = {
            "limit": LIST_LIMIT,
            "properties": props,
            "archived": "true" if phase == "archived" else "false",
        }
        if after:
            params["after"] = after
        if (
            self.list_with_history
            and phase == "live"
            and self.tracked()
            and self.history_from_api()
        ):
            # Every record needs its history: list it along (pages of 50) rather than
            # list 100 and batch-read 50 more (two requests per 100 records, not three).
            params["propertiesWithHistory"] = ",".join(self.tracked())
        return params

    def _after_full_read(
        self, high: int | None, high_id: int, started: int | None
    ) -> dict[str, Any]:
        """The bookmark after a full read: the newest record seen, but never past the read's start.

        A list read is not a snapshot: a record changed after its page was read may be missed,
        so anything changed since the read began (per the server's ``Date``) is read again next
        time.
        """
        if high is None:
            bookmark, bookmark_id = (started or 0), -1
        elif started is not None and high >= started:
            bookmark, bookmark_id = started, -1
        else:
            bookmark, bookmark_id = high, high_id
        return {
            "bookmark": ms_iso(bookmark),
            "bookmark_id": bookmark_id,
            "deletes_checked_at": clock.iso(),
        }

    def _search(
        self,
        ctx: SyncContext,
        groups: list[list[dict[str, Any]]],
        sort: str,
        *,
        direction: str = "ASCENDING",
    ) -> dict[str, Any]:
        body = {
            "filterGroups": [{"filters": g} for g in groups],
            "sorts": [{"propertyName": sort, "direction": direction}],
            "properties": self.requested(),
            "limit": SEARCH_LIMIT,
        }
        return json_body(
            ctx.client.post(f"{self.path}/search", json=body, idempotent=True),
            f"{self.object_type} search",
        )

    def _deletes_due(self, ctx: SyncContext, state: dict[str, Any]) -> bool:
        every = float(getattr(self.settings, "deletes_every_hours", 0) or 0)
        checked = (
            clock.parse(state.get("deletes_checked_at"))
            if state.get("deletes_checked_at")
            else None
        )
        if every <= 0 or checked is None:
            return True
        return (clock.now() - checked).total_seconds() >= every * 3600

    def _archived(
        self, ctx: SyncContext, state: dict[str, Any], after: str | None, *, final: bool
    ) -> Iterator[Page]:
        """Read the archived list into deleted rows; the last page stamps ``deletes_checked_at``."""
        committed = {k: v for k, v in state.items() if k != "resume"}
        props = ",".join(self.requested())
        while True:
            params: dict[str, Any] = {"limit": LIST_LIMIT, "properties": props, "archived": "true"}
            if after:
                params["after"] = after
            body = json_body(
                ctx.client.get(self.path, params=params), f"archived {self.object_type} list"
            )
            raws = self.records_to_raw(ctx, body.get("results") or [], archived=True)
            nxt = dig(body, "paging.next.after")
            if nxt in (None, ""):
                yield Page(raws, {**committed, "deletes_checked_at": clock.iso()}, done=final)
                return
            if nxt == after:
                raise FatalAPIError(
                    f"HubSpot archived {self.object_type} list returned the same cursor twice"
                )
            after = nxt
            yield Page(raws, {**committed, "resume": {"phase": "after", "after": after}})
            if ctx.stop.is_set():
                return


__all__ = ["HELD_ROWS", "OBSERVED", "CrmObjectStream", "ms_iso", "server_ms", "to_ms"]
