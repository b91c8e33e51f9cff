"""Incremental strategies: how a stream reads only what changed, commits and resumes.

A stream declares ``incremental = <strategy>``. The strategy owns the page loop, the loop
guard, the bookmark and the resume position; the stream supplies what is particular to its
API through small hooks (``fetch``, ``parse_response``, ``request_params``,
``cursor_value``, ``records_to_raw`` and the few named by each strategy below). Every
``Page`` carries the state committed with its rows: while a stream is mid-run that state
holds ``resume`` (where the next page is), and only the last page moves the bookmark, so a
killed sync restarts at the page after the last committed one.

The strategies here cover paged listings (``FullTable``, ``Cursor``, including POST-body
searches whose page token travels in the JSON body), cursor exports (``CursorExport``),
time-window exports that repeat their boundary second (``TimeExport``) and resources listed
once and then kept current by something else (``ListOnce``). ``hub.http.replay`` adds event
logs replayed forward (``EventReplay``), keyset searches (``KeysetSearch``) and batched
look-ups of keys the host provides (``BatchedLookup``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hub import clock
from hub.errors import CursorExpiredError, FatalAPIError
from hub.http.readahead import ReadAhead
from hub.store import RawRecord

if TYPE_CHECKING:  # pragma: no cover - typing only
    from hub.connector import Stream, SyncContext


@dataclass
class Page:
    """One page of records and the state to commit with it."""

    records: list[RawRecord]
    state: dict[str, Any] | None
    done: bool = False


class LoopGuard:
    """Stops a stream whose API hands back a position it already gave (it would loop forever)."""

    def __init__(self, what: str = "the API") -> None:
        self.what = what
        self._seen: set[str] = set()

    def check(self, token: Any) -> None:
        key = token if isinstance(token, str) else json.dumps(token, sort_keys=True, default=str)
        if key in self._seen:
            raise FatalAPIError(
                f"pagination loop: {self.what} returned the same page position twice ({key[:40]})",
                hint="report this upstream; the stream stopped to avoid syncing forever",
            )
        self._seen.add(key)


def set_path(body: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` inside a JSON body, creating the dicts on the way."""
    parts = dotted.split(".")
    for part in parts[:-1]:
        inner = body.get(part)
        if not isinstance(inner, dict):
            inner = body[part] = {}
        body = inner
    body[parts[-1]] = value


def merge_body(body: dict[str, Any] | None, updates: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` with dotted ``updates`` applied (page tokens for POST searches)."""
    out = json.loads(json.dumps(body or {}))
    for key, value in updates.items():
        set_path(out, key, value)
    return out


class Strategy:
    """Base of the incremental strategies: ``pages(stream, ctx, state)`` yields ``Page``s."""

    name: ClassVar[str] = "custom"

    def pages(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any] | None
    ) -> Iterator[Page]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class FullTable(Strategy):
    """Re-read everything every run, following the stream's paginator.

    Each page commits a ``resume`` position (URL, query and body), so a killed run goes on
    from the next page. Page tokens go to the query string, or into the JSON body when the
    paginator says ``target = "body"`` (POST searches).
    """

    name = "full"
    tracks_bookmark: ClassVar[bool] = False

    def __init__(self, *, inclusive: bool = False) -> None:
        # Inclusive: the API's filter includes the bookmark itself, so that instant's records
        # come again; the ids seen at it are kept and dropped on the next run.
        self.inclusive = inclusive

    def start(self, stream: Stream, state: dict[str, Any]) -> Any:
        return None

    def pages(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any] | None
    ) -> Iterator[Page]:
        state = {} if ctx.full_refresh else dict(state or {})
        committed = {k: v for k, v in state.items() if k != "resume"}
        bookmark = self.start(stream, state)
        seen = set(state.get("seen") or []) if bookmark is not None else set()
        paginator = stream.make_paginator()
        target = getattr(paginator, "target", "query")
        resume = state.get("resume")
        if resume:
            url, params = resume.get("url") or stream.path, resume.get("params") or {}
            body = resume.get("json")
            high, high_ids = resume.get("high"), set(resume.get("high_ids") or [])
            bookmark = resume.get("bookmark", bookmark)
            seen = set(resume.get("seen") or seen)
        else:
            first = paginator.first_params() if paginator else {}
            url = stream.path
            params = stream.request_params(bookmark)
            body = stream.request_body(bookmark)
            if target == "body":
                body = merge_body(body, first)
            else:
                params = {**params, **first}
            high, high_ids = bookmark, set(seen)
        page_no = 0
        while True:
            page_no += 1
            response, decoded, records = stream.fetch(ctx, url, params=params, json=body)
            kept = []
            for record in records:
                value = stream.cursor_value(record) if isinstance(record, dict) else None
                if self.inclusive and bookmark is not None and value is not None:
                    rid = stream.record_key(record)
                    if rid in seen and value <= bookmark:
                        continue  # the boundary instant again: stored last run
                kept.append(record)
                if value is not None and self.tracks_bookmark:
                    if high is None or value > high:
                        high, high_ids = value, {stream.record_key(record)}
                    elif value == high:
                        high_ids.add(stream.record_key(record))
            raws = stream.records_to_raw(ctx, kept, page=page_no)
            nxt = paginator.next_page(response, decoded, records) if paginator else None
            if nxt is None:
                yield Page(raws, self.final(committed, high, high_ids), done=True)
                return
            if isinstance(nxt, str):
                url, params = nxt, {}
            elif target == "body":
                body = merge_body(body, nxt)
            else:
                url, params = stream.path, {**stream.request_params(bookmark), **nxt}
            position: dict[str, Any] = {"url": url, "params": params, "high": high}
            position["bookmark"] = bookmark
            if body is not None:
                position["json"] = body
            if self.inclusive:
                position.update(high_ids=sorted(high_ids), seen=sorted(seen))
            yield Page(raws, {**committed, "resume": position})
            if ctx.stop.is_set():
                return

    def final(self, committed: dict[str, Any], high: Any, high_ids: set[str]) -> dict[str, Any]:
        return {"bookmark": None, "complete": True}


class Cursor(FullTable):
    """Send the bookmark as a filter (``param``) and keep the highest ``cursor_field`` seen.

    The bookmark moves only when the run finishes (the API need not return records in cursor
    order); a killed run resumes from its paginator position. ``initial_bookmark()`` on the
    stream gives the filter of a first run (default: none). With ``inclusive=True`` the ids
    at the bookmark are kept beside it and skipped when the API sends them again.
    """

    name = "cursor"
    tracks_bookmark = True

    def __init__(self, param: str | None = None, *, inclusive: bool = False) -> None:
        super().__init__(inclusive=inclusive)
        self.param = param

    def start(self, stream: Stream, state: dict[str, Any]) -> Any:
        bookmark = state.get("bookmark")
        return bookmark if bookmark is not None else stream.initial_bookmark()

    def final(self, committed: dict[str, Any], high: Any, high_ids: set[str]) -> dict[str, Any]:
        if self.inclusive:
            return {"bookmark": high, "seen": sorted(high_ids)}
        return {"bookmark": high}


class CursorExport(Strategy):
    """A cursor-based export: a start time on the first request, then the API's cursor.

    The cursor is a position in the export's (updated, id) order, so it is the bookmark and
    commits with every page; the next run asks from it for what changed. The stream's
    ``initial_bookmark()`` is the first run's start time and ``request_params(None)`` the
    fixed parameters. A record twice in one page keeps its last copy.
    """

    name = "cursor_export"

    def __init__(
        self,
        *,
        start_param: str = "start_time",
        cursor_param: str = "cursor",
        cursor_path: str = "after_cursor",
        end_path: str = "end_of_stream",
    ) -> None:
        self.start_param = start_param
        self.cursor_param = cursor_param
        self.cursor_path = cursor_path
        self.end_path = end_path

    def pages(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any] | None
    ) -> Iterator[Page]:
        from hub.http.pagination import dig

        state = {} if ctx.full_refresh else dict(state or {})
        cursor = state.get("bookmark")
        guard = LoopGuard(f"{stream.connector.title or stream.connector.name} {stream.name} export")
        if cursor:
            guard.check(cursor)
        page_no = 0
        while True:
            page_no += 1
            params = dict(stream.request_params(None))
            if cursor:
                params[self.cursor_param] = cursor
            else:
                params[self.start_param] = stream.initial_bookmark()
            _, body, records = stream.fetch(ctx, stream.path, params=params)
            unique: dict[str, Any] = {}
            for record in records:
                key = stream.record_key(record) if isinstance(record, dict) else None
                unique[key if key is not None else f"#{len(unique)}"] = record
            after = dig(body, self.cursor_path) or cursor
            done = bool(dig(body, self.end_path)) or not records
            raws = stream.records_to_raw(ctx, list(unique.values()), page=page_no)
            yield Page(raws, {"bookmark": after}, done=done)
            if done or ctx.stop.is_set():
                return
            if not after:
                raise FatalAPIError(
                    f"{guard.what} gave no cursor before its end",
                    hint="the stream stopped to avoid looping; run the sync again",
                )
            guard.check(after)  # also catches the same cursor handed back
            cursor = after


class TimeExport(Strategy):
    """A time-based export: ``start_param`` in, ``end_path`` (the next start) out.

    The next request starts *at* the previous end time, so the API sends that second's
    records again; the ids seen in it are kept in the state (``seen``) and dropped. The
    bookmark never moves past now − ``lag_seconds`` (exports that do not serve the latest
    minute would otherwise skip writes landing in it). ``cursor_value`` must give the same
    unit as the end time (unix seconds for Zendesk); ``initial_bookmark()`` is the first start.
    """

    name = "time_export"

    def __init__(
        self,
        *,
        start_param: str = "start_time",
        end_path: str = "end_time",
        end_flag: str = "end_of_stream",
        lag_seconds: int = 61,
    ) -> None:
        self.start_param = start_param
        self.end_path = end_path
        self.end_flag = end_flag
        self.lag_seconds = lag_seconds

    def safe_now(self) -> int:
        return int(clock.now().timestamp()) - self.lag_seconds

    def pages(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any] | None
    ) -> Iterator[Page]:
        from hub.http.pagination import dig

        state = {} if ctx.full_refresh else dict(state or {})
        start = state.get("bookmark")
        seen = set(state.get("seen") or [])
        if start is None:
            start, seen = stream.initial_bookmark() or 0, set()
        if start > self.safe_now():  # only if the clock went backwards; the API would refuse
            start, seen = self.safe_now(), set()
        page_no = 0
        while True:
            page_no += 1
            params = {**stream.request_params(None), self.start_param: start}
            _, body, records = stream.fetch(ctx, stream.path, params=params)
            unique: dict[str, Any] = {}
            for record in records:
                if not isinstance(record, dict):
                    unique[f"#{len(unique)}"] = record
                    continue
                rid = stream.record_key(record)
                updated = stream.cursor_value(record)
                if rid in seen and updated is not None and updated <= start:
                    continue  # the boundary second again: already stored
                unique[rid if rid is not None else f"#{len(unique)}"] = record
            end = dig(body, self.end_path)
            end = max(int(end), start) if end is not None else start
            boundary = {
                rid
                for rid, r in unique.items()
                if isinstance(r, dict) and stream.cursor_value(r) == end
            }
            if end == start:
                boundary |= seen
            if end <= self.safe_now():
                page_state = {"bookmark": end, "seen": sorted(boundary)}
            else:  # never bookmark into the last minute; re-reading it later is harmless
                page_state = {"bookmark": self.safe_now(), "seen": []}
            done = bool(dig(body, self.end_flag)) or not records
            raws = stream.records_to_raw(ctx, list(unique.values()), page=page_no)
            yield Page(raws, page_state, done=done)
            if done or ctx.stop.is_set():
                return
            if end == start and not unique:
                raise FatalAPIError(
                    f"pagination loop: {stream.connector.name} {stream.name} export did not "
                    f"move past {self.start_param}={start}",
                    hint="the stream stopped to avoid looping; report it upstream",
                )
            start, seen = end, boundary


class ListOnce(Strategy):
    """A resource listed in full once; afterwards something else keeps its table current.

    Used where an event log replays every change (Stripe): the listing commits ``resume``
    (the last id, for ``LastIdPaginator``) with every page and ``complete`` at the end, after
    which the stream makes no request until its state is cleared. A resume point that no
    longer exists (deleted meanwhile: ``CursorExpiredError``) restarts the listing. With
    ``sweep_unseen`` a complete listing tombstones stored rows it did not return. Hooks:
    ``prepare(ctx, records)`` before storing, ``finished(ctx, seen)`` after a full listing.
    """

    name = "list_once"

    def __init__(self, *, sweep_unseen: bool = False, resume_param: str = "starting_after"):
        self.sweep_unseen = sweep_unseen
        self.resume_param = resume_param

    def pages(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any] | None
    ) -> Iterator[Page]:
        state = {} if ctx.full_refresh else dict(state or {})
        if state.get("complete"):
            return  # kept current elsewhere: no request
        paginator = stream.make_paginator()
        params = {**stream.request_params(None), **paginator.first_params()}
        resumed = state.get("resume")
        if resumed:
            params[self.resume_param] = resumed
        # Ids listed, for the sweep; unknown when resumed (earlier pages are not in memory).
        seen: set[str] | None = None if resumed else set()
        with ReadAhead(ctx.client) as ahead:
            yield from self._listing(stream, ctx, paginator, params, resumed, seen, ahead)

    def _listing(
        self,
        stream: Stream,
        ctx: SyncContext,
        paginator: Any,
        params: dict[str, Any],
        resumed: Any,
        seen: set[str] | None,
        ahead: ReadAhead,
    ) -> Iterator[Page]:
        """The page loop. A GET listing asks for the next page (``ReadAhead``) as soon as this
        one's cursor is known, before this page is prepared and stored; the cursor comes from
        the records as listed (``prepare`` may turn them into other records: customers into
        their cards)."""
        page_no = 0
        # A stream with its own ``fetch`` keeps it (and reads one page at a time).
        early = stream.method == "GET" and type(stream).fetch is _plain_fetch()
        while True:
            page_no += 1
            try:
                if early:
                    response = ahead.get(stream.path, params)
                    body, records = stream.parse_response(response)
                else:
                    response, body, records = stream.fetch(ctx, stream.path, params=params)
            except CursorExpiredError:
                if not resumed:
                    raise
                ctx.note(f"{stream.name}: resume point no longer exists; listing from the start")
                paginator = stream.make_paginator()
                params = {**stream.request_params(None), **paginator.first_params()}
                resumed, seen = None, set()
                continue
            listed = [r for r in records if isinstance(r, dict)]
            nxt = paginator.next_page(response, body, listed)
            if nxt is not None and early and not ctx.stop.is_set():
                ahead.send(stream.path, {**params, **nxt})
            records = stream.prepare(ctx, listed)
            raws = stream.records_to_raw(ctx, records, page=page_no)
            if seen is not None:
                seen.update(r.id for r in raws)
            if nxt is None:
                if seen is not None and self.sweep_unseen:
                    raws.extend(unseen_rows(ctx, stream.name, seen))
                stream.finished(ctx, seen)
                yield Page(raws, {"complete": True, "listed_at": clock.iso()}, done=True)
                return
            params = {**params, **nxt}
            yield Page(raws, {"resume": nxt[self.resume_param]})
            if ctx.stop.is_set():
                return


def _plain_fetch() -> Any:
    from hub.connector import Stream

    return Stream.fetch


def unseen_rows(ctx: SyncContext, stream: str, keep: set[str]) -> list[RawRecord]:
    """Live rows of ``stream`` whose id is not in ``keep``, as tombstones.

    Only the rows that go are decoded: a sweep over a large table reads ids, not documents.
    """
    table = ctx.store.raw_table(ctx.connection, stream).name
    gone = [
        rid
        for (rid,) in ctx.store.db.execute(f"SELECT id FROM [{table}] WHERE deleted = 0")
        if rid not in keep
    ]
    out: list[RawRecord] = []
    for start in range(0, len(gone), 500):
        chunk = gone[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for rid, data, updated in ctx.store.db.execute(
            f"SELECT id, data, updated_at FROM [{table}] WHERE id IN ({marks})", chunk
        ):
            out.append(
                RawRecord(id=rid, data=ctx.store.decode_raw(data), updated_at=updated, deleted=True)
            )
    return out


STRATEGIES: dict[str, type[Strategy]] = {"full": FullTable, "cursor": Cursor}
"""The strategies a stream may name by string (``incremental = "cursor"``)."""


__all__ = [
    "Cursor",
    "CursorExport",
    "FullTable",
    "ListOnce",
    "LoopGuard",
    "Page",
    "Strategy",
    "TimeExport",
    "merge_body",
    "unseen_rows",
]
