"""Incremental strategies for APIs without a plain "changed since" listing.

- ``EventReplay``: an event log listed once, then replayed forward from the bookmarked
  event, with a full re-read when the bookmark is older than the log's retention (Stripe's
  30 days) or unknown to the API.
- ``KeysetSearch``: a search re-queried as a keyset on (modification time, id), so result
  caps (HubSpot's 10,000 per query) never bite and ties at one instant are walked by id.
- ``BatchedLookup``: no list at all; the host gives the keys (accounts' domains), looked up
  N per request, never-seen first, skipping keys looked up within a freshness window.

Like the strategies in ``hub.http.incremental`` they own the loop, the loop guard, the
bookmark and the resume position; streams supply the API's specifics through the hooks
each docstring names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub import clock
from hub.errors import CursorExpiredError, FatalAPIError, HubError
from hub.http.incremental import LoopGuard, Page, Strategy
from hub.store import RawRecord

if TYPE_CHECKING:  # pragma: no cover - typing only
    from hub.connector import Stream, SyncContext


def _title(stream: Stream) -> str:
    return stream.connector.title or stream.connector.name


class EventReplay(Strategy):
    """An event log: listed whole once, then replayed forward from the bookmarked event.

    - First run (no bookmark): every event the API still lists is read (newest first, the
      stream's paginator) and the newest one seen at the start becomes the bookmark. The
      other streams of the connection lose their bookmarks first: they must be listed after
      this point, or changes made in between would be lost.
    - Later runs: ``forward_param`` = the bookmarked id gives the page just after it; pages
      come oldest first, each handed (oldest event first) to ``stream.apply_events(ctx,
      events)``, which writes the objects they carry, before the page commits with its
      newest event as the bookmark. No change upstream costs exactly one request.
    - A bookmark older than ``retention_days`` (less ``margin``), or one the API no longer
      knows (``CursorExpiredError``), means a full re-read, noted on the run.
    - An empty log at the first run leaves a time as the bookmark; the next run asks by
      ``since_param`` (less ``clock_skew_s``).
    """

    name = "event_replay"

    def __init__(
        self,
        *,
        retention_days: int = 30,
        margin: dt.timedelta = dt.timedelta(hours=1),
        forward_param: str = "ending_before",
        time_field: str = "created",
        since_param: str = "created[gte]",
        clock_skew_s: int = 300,
    ) -> None:
        self.retention_days = retention_days
        self.stale_after = dt.timedelta(days=retention_days) - margin
        self.forward_param = forward_param
        self.time_field = time_field
        self.since_param = since_param
        self.clock_skew_s = clock_skew_s

    def stale_reason(self, stream: Stream, bookmark: dict[str, Any]) -> str | None:
        """Why a bookmark cannot be replayed from (older than the log's retention), if so."""
        created = bookmark.get(self.time_field)
        if not isinstance(created, (int, float)):
            return None
        age = clock.now() - dt.datetime.fromtimestamp(created, dt.timezone.utc)
        if age > self.stale_after:
            return (
                f"bookmark is {age.days} days old, older than {_title(stream)}'s "
                f"{self.retention_days}-day event window"
            )
        return None

    def pages(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any] | None
    ) -> Iterator[Page]:
        state = {} if ctx.full_refresh else dict(state or {})
        bookmark = state.get("bookmark")
        if bookmark and not state.get("resume"):
            reason = self.stale_reason(stream, bookmark)
            if reason is None:
                try:
                    yield from self.replay(stream, ctx, bookmark)
                    return
                except CursorExpiredError as exc:
                    reason = (
                        f"{_title(stream)} no longer knows the bookmarked event ({exc.message})"
                    )
            ctx.note(f"{stream.name}: {reason}; full re-read of every {_title(stream)} stream")
            state = {}
        yield from self.full_listing(stream, ctx, state)

    def _mark(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"id": event.get("id"), self.time_field: event.get(self.time_field)}

    def replay(self, stream: Stream, ctx: SyncContext, bookmark: dict[str, Any]) -> Iterator[Page]:
        if not bookmark.get("id"):
            yield from self.replay_by_time(stream, ctx, bookmark)
            return
        cursor = bookmark["id"]
        guard = LoopGuard(f"{_title(stream)} {stream.name}")
        guard.check(cursor)
        limit = stream.make_paginator().first_params()
        page_no = 0
        while True:
            page_no += 1
            _, body, records = stream.fetch(
                ctx, stream.path, params={**limit, self.forward_param: cursor}
            )
            events = [e for e in records if isinstance(e, dict) and e.get("id")]
            if not events:
                return
            # The page just after the cursor, still newest first.
            newest = events[0]
            stream.apply_events(ctx, list(reversed(events)))
            done = not body.get("has_more") if isinstance(body, dict) else True
            raws = stream.records_to_raw(ctx, events, page=page_no)
            yield Page(raws, {"bookmark": self._mark(newest)}, done=done)
            if done or ctx.stop.is_set():
                return
            guard.check(newest["id"])
            cursor = newest["id"]

    def replay_by_time(
        self, stream: Stream, ctx: SyncContext, bookmark: dict[str, Any]
    ) -> Iterator[Page]:
        """No event id to page from (the log was empty): everything since a time."""
        since = int(bookmark.get(self.time_field) or 0) - self.clock_skew_s
        paginator = stream.make_paginator()
        params = {**paginator.first_params(), self.since_param: since}
        events: list[dict[str, Any]] = []
        while True:
            response, body, records = stream.fetch(ctx, stream.path, params=params)
            page = [e for e in records if isinstance(e, dict) and e.get("id")]
            events.extend(page)
            nxt = paginator.next_page(response, body, page)
            if nxt is None:
                break
            params = {**params, **nxt}
        if not events:
            return
        events.sort(key=lambda e: (e.get(self.time_field) or 0, str(e.get("id"))))
        stream.apply_events(ctx, events)
        raws = stream.records_to_raw(ctx, events, page=1)
        yield Page(raws, {"bookmark": self._mark(events[-1])}, done=True)

    def full_listing(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any]
    ) -> Iterator[Page]:
        resume = state.get("resume") or {}
        if not resume:
            for other in stream.connector.get_streams():
                if other.name != stream.name:
                    ctx.store.clear_state(ctx.connection, other.name)
        newest = resume.get("newest")
        paginator = stream.make_paginator()
        params: dict[str, Any] = {**paginator.first_params(), **(resume.get("next") or {})}
        page_no = 0
        while True:
            page_no += 1
            try:
                response, body, records = stream.fetch(ctx, stream.path, params=params)
            except CursorExpiredError:
                if not resume.get("next"):
                    raise
                ctx.note(
                    f"{stream.name}: resume point aged out of {_title(stream)}'s "
                    f"{self.retention_days} days; listing from the start"
                )
                yield from self.full_listing(stream, ctx, {})
                return
            events = [e for e in records if isinstance(e, dict) and e.get("id")]
            if newest is None:
                first = (
                    events[0]
                    if events
                    else {"id": None, self.time_field: int(clock.now().timestamp())}
                )
                newest = self._mark(first)
            nxt = paginator.next_page(response, body, events)
            raws = stream.records_to_raw(ctx, events, page=page_no)
            if nxt is None:
                yield Page(raws, {"bookmark": newest}, done=True)
                return
            params = {**params, **nxt}
            yield Page(raws, {"resume": {"next": nxt, "newest": newest}})
            if ctx.stop.is_set():
                return


class KeysetSearch(Strategy):
    """Later runs re-query "changed after (time, id)", ascending, as a keyset.

    Every request is a fresh query from the last position seen, never an offset: each result
    set stays far below the API's cap (HubSpot: 10,000 per query) and a record modified while
    we read (it moves to the end) cannot shift a neighbour out of view. The bookmark is the
    pair (time, id): everything before ``bookmark``, or at it with an id up to
    ``bookmark_id``, is stored. A full page whose every record has one time switches to that
    instant in id order (``tie``), then moves on. Nothing new costs one request.

    Hooks on the stream:
    - ``keyset_query(ctx, t, x, mode) -> (records, total)``: ``mode`` is ``"from"`` (time ≥
      t), ``"after"`` (time = t and id > x, or time > t) or ``"tie"`` (time = t and id > x,
      sorted by id); ``total`` the API's count of matches, or None;
    - ``keyset_key(record) -> (time, id)`` as integers; ``keyset_time(text) -> int`` and
      ``keyset_text(int) -> text`` between the bookmark's stored form and integers;
    - ``full_pages(ctx, resume)``: the first run (no bookmark, or ``resume["full"]``);
    - ``after_keyset_due(ctx, state, live_total)`` and ``after_keyset(ctx, state, resume)``:
      a pass run after the search (HubSpot's archived list), resumed when
      ``resume["phase"] == "after"``. Other keys of the state (``deletes_checked_at``) are
      carried along.

    With ``probe=True`` a run starts with one query for everything, newest first
    (``mode="newest"``): when every change fits on that page (it reaches a record older than
    the bookmark) the run is that one request, and its ``total`` (the live count upstream)
    goes to ``after_keyset_due``, so deletions are noticed by count, at no extra request.
    """

    name = "keyset_search"

    def __init__(self, *, page_limit: int = 200, probe: bool = False) -> None:
        self.page_limit = page_limit
        self.probe = probe

    def pages(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any] | None
    ) -> Iterator[Page]:
        state = {} if ctx.full_refresh else dict(state or {})
        resume = state.get("resume") or {}
        if state.get("bookmark") is None or resume.get("full"):
            yield from stream.full_pages(ctx, resume)
            return
        if resume.get("phase") == "after":  # the search part already finished
            yield from stream.after_keyset(ctx, state, resume)
            return
        yield from self.keyset(stream, ctx, state)

    def keyset(self, stream: Stream, ctx: SyncContext, state: dict[str, Any]) -> Iterator[Page]:
        t = stream.keyset_time(state["bookmark"])
        if t is None:
            raise FatalAPIError(
                f"{_title(stream)} {stream.name}: the saved bookmark {state['bookmark']!r} "
                "is not a time",
                hint=f"run 'hub sync --full-refresh --stream {stream.name}'",
            )
        x = int(state.get("bookmark_id", -1))
        tie = bool(state.get("tie"))
        kept = {
            k: v for k, v in state.items() if k not in ("bookmark", "bookmark_id", "tie", "resume")
        }
        guard = LoopGuard(f"{_title(stream)} {stream.name} search")

        def mark(t: int, x: int, tie: bool = False) -> dict[str, Any]:
            out = {**kept, "bookmark": stream.keyset_text(t), "bookmark_id": x}
            return {**out, "tie": True} if tie else out

        page_no = 0
        if self.probe and not tie:
            page_no += 1
            records, total = stream.keyset_query(ctx, t, x, "newest")
            keyed = [
                (stream.keyset_key(r), r) if isinstance(r, dict) else ((None, 0), r)
                for r in records
            ]
            times = [k[0] for k, _ in keyed if k[0] is not None]
            # Sorted by time only: ties at ``t`` come in any id order, so the page holds every
            # change only if it reaches a strictly older record (or holds everything).
            complete = (isinstance(total, int) and total <= len(records)) or bool(
                times and min(times) < t
            )
            if complete:
                newer = [r for k, r in keyed if k[0] is not None and k > (t, x)]
                if any(k[0] is None for k, _ in keyed):
                    newer += [r for k, r in keyed if k[0] is None]  # reported as skipped
                stamped = [k for k, _ in keyed if k[0] is not None and k > (t, x)]
                if stamped:
                    t, x = max(stamped)
                final = mark(t, x)
                yield Page(stream.records_to_raw(ctx, newer, page=page_no), final)
                if stream.after_keyset_due(ctx, final, total):
                    yield from stream.after_keyset(ctx, final, None)
                else:
                    yield Page([], final, done=True)
                return
        while True:
            page_no += 1
            guard.check([t, x, tie])
            mode = "tie" if tie else ("after" if x >= 0 else "from")
            records, total = stream.keyset_query(ctx, t, x, mode)
            stamped = []
            for record in records:
                key = stream.keyset_key(record) if isinstance(record, dict) else (None, 0)
                if key[0] is None:
                    raise FatalAPIError(
                        f"{_title(stream)} {stream.name} search returned a record without "
                        "a modification time"
                    )
                stamped.append(key)
            # More to come? (A page may be short of the limit and still not be the last.)
            full = bool(records) and (
                total > len(records) if isinstance(total, int) else len(records) >= self.page_limit
            )
            raws = stream.records_to_raw(ctx, records, page=page_no)
            if tie:
                if stamped:
                    x = max(rid for _, rid in stamped)
                if full:
                    yield Page(raws, mark(t, x, tie=True))
                else:
                    tie = False  # the instant is done; go on after it
                    yield Page(raws, mark(t, x))
                if ctx.stop.is_set():
                    return
                continue
            if full:
                last = max(ms for ms, _ in stamped)
                if last == t:
                    tie = True  # a whole page at one instant: walk it by id
                    yield Page(raws, mark(t, x, tie=True))
                else:
                    # Everything before ``last`` is in; ``last`` itself may be partly in.
                    t, x = last, -1
                    yield Page(raws, mark(t, x))
                if ctx.stop.is_set():
                    return
                continue
            # The whole remaining result set is in hand: the bookmark is its newest record.
            if stamped:
                newest = max(ms for ms, _ in stamped)
                if newest > t:
                    t, x = newest, max(rid for ms, rid in stamped if ms == newest)
                else:
                    x = max([x, *(rid for ms, rid in stamped if ms == t)])
            final = mark(t, x)
            if stream.after_keyset_due(ctx, state, None):
                yield Page(raws, final)
                yield from stream.after_keyset(ctx, final, None)
            else:
                yield Page(raws, final, done=True)
            return


@dataclass
class LookupResult:
    """What one batched look-up gave: rows to store, keys that failed, a reason to stop."""

    records: list[RawRecord] = field(default_factory=list)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """key → {"message": text, "code": the API's code or None}."""
    stop: HubError | None = None
    """Raised after the rows are stored (out of credits: keep what was answered)."""


class BatchedLookup(Strategy):
    """No list endpoint: look up the keys the host gives, ``batch_size`` per request.

    Keys come from ``stream.lookup_keys(ctx)`` (typically ``ctx.account_domains()``, the
    host's read model). Never-seen keys go first, then the stalest; a key looked up (or
    failed) within ``fresh_days`` is skipped, which is what keeps paid look-ups from being
    spent twice. The stored row's ``updated_at`` is its look-up time, the per-key bookmark,
    committed with its page, so a killed run resumes with the keys it had not reached.
    Failures are kept in the state (``failed``) with their time and message.

    ``batch_size`` and ``fresh_days`` are numbers or the names of settings fields. Hooks:
    ``lookup(ctx, keys) -> LookupResult`` and ``report(ctx, looked_up, skipped)``.
    """

    name = "batched_lookup"

    def __init__(
        self, *, batch_size: int | str = "batch_size", fresh_days: float | str = "freshness_days"
    ) -> None:
        self.batch_size = batch_size
        self.fresh_days = fresh_days

    @staticmethod
    def _value(stream: Stream, value: int | float | str) -> Any:
        return getattr(stream.settings, value) if isinstance(value, str) else value

    def looked_up(self, stream: Stream, ctx: SyncContext) -> dict[str, str]:
        """key → look-up time of every row already stored."""
        table = ctx.store.raw_table(ctx.connection, stream.name).name
        return {
            rid: at
            for rid, at in ctx.store.db.execute(f"SELECT id, updated_at FROM [{table}]")
            if at
        }

    def plan(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any], keys: list[str]
    ) -> list[str]:
        """Keys due for a look-up: never seen first, then the oldest, skipping fresh ones."""
        if ctx.full_refresh:
            return list(keys)
        days = float(self._value(stream, self.fresh_days))
        cutoff = clock.iso(clock.now() - dt.timedelta(days=days))
        seen = self.looked_up(stream, ctx)
        failed = state.get("failed") or {}
        due = [k for k in keys if max(seen.get(k, ""), failed.get(k, {}).get("at", "")) < cutoff]
        if len(keys) > len(due):
            ctx.note(
                f"{len(keys) - len(due)} {stream.name} looked up within {days:g} days: "
                "no credits spent on them"
            )
        return sorted(due, key=lambda k: (seen.get(k, ""), k))

    def pages(
        self, stream: Stream, ctx: SyncContext, state: dict[str, Any] | None
    ) -> Iterator[Page]:
        state = dict(state or {})
        keys = list(dict.fromkeys(stream.lookup_keys(ctx)))
        due = self.plan(stream, ctx, state, keys)
        known = set(keys)
        # Forget failures of keys no longer asked for, so the state stays small.
        failed = {k: v for k, v in (state.get("failed") or {}).items() if k in known}
        batch = int(self._value(stream, self.batch_size))
        looked_up, skipped = 0, []
        for start in range(0, len(due), batch):
            chunk = due[start : start + batch]
            result = stream.lookup(ctx, chunk)
            now = clock.iso()
            answered = {r.id for r in result.records}
            for key in answered:
                failed.pop(key, None)
            for key in chunk:
                if key in answered:
                    continue
                problem = result.failed.get(key)
                if problem is None and result.stop is not None:
                    continue  # not reached (out of credits): due again next run
                problem = problem or {"message": "no result returned", "code": None}
                failed[key] = {"at": now, **problem}
                skipped.append(f"{key} ({problem.get('message')})")
            looked_up += len(result.records)
            last = start + batch >= len(due)
            yield Page(result.records, {"failed": failed}, done=last and result.stop is None)
            if result.stop is not None:
                stream.report(ctx, looked_up, skipped)
                raise result.stop
            if ctx.stop.is_set() and not last:
                stream.report(ctx, looked_up, skipped)
                return
        if not due:
            yield Page([], {"failed": failed}, done=True)
        stream.report(ctx, looked_up, skipped)


__all__ = ["BatchedLookup", "EventReplay", "KeysetSearch", "LookupResult"]
