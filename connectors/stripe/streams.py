"""The Stripe streams: an events log that keeps five object tables current.

Order matters and is declared in ``StripeConnector.streams``: ``events`` runs first.

- **First sync** (no bookmarks): ``events`` lists the last 30 days of events (newest first,
  ``limit=100``, ``starting_after``) and bookmarks the newest one it saw at the start; then
  every object stream lists its resource in full the same way. Anything that changes while
  the objects are being listed has an event newer than the bookmark, so the next run
  replays it; nothing falls between the two.
- **Later syncs**: ``events`` asks for what came after the bookmark (``ending_before``,
  oldest page first) and applies each event's ``data.object`` as an upsert into the raw
  table of its object type (a ``customer.deleted``/``invoice.deleted`` is a tombstone). The
  object streams see a complete bookmark and make no request at all, so a sync with no
  upstream change costs exactly one request and writes nothing.
- **Stale bookmark**: Stripe lists events for 30 days only. A bookmark older than that, or
  one Stripe no longer knows (``resource_missing`` on the cursor), makes ``events`` note it,
  clear the object streams' bookmarks and list events afresh; the object streams, running
  next, re-read everything.

Payment methods are the customers' default cards, and cost no request of their own: the
customers listing asks for ``expand[]=data.invoice_settings.default_payment_method``, stores
each customer with the card's id (the shape events carry) and writes the card into the
``payment_methods`` table. A card that stops being a customer's default (per the
``customer.updated`` event's ``previous_attributes``) or is detached is tombstoned.

Each page commits with its bookmark. Upserts applied from an events page are written just
before that page's own commit; a crash in between replays them next run, and replaying a
snapshot is idempotent. Within a page, the chronologically last snapshot of an object wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from hub import clock
from hub.connector import Page, Stream, SyncContext
from hub.errors import APIError, FatalAPIError
from hub.http.client import json_of
from hub.http.incremental import ListOnce, unseen_rows
from hub.http.pagination import LastIdPaginator
from hub.http.replay import EventReplay
from hub.store import RawRecord

EVENT_RETENTION_DAYS = 30

# Which raw stream an event's ``data.object`` belongs to, by its ``object`` field.
OBJECT_STREAMS = {
    "customer": "customers",
    "payment_method": "payment_methods",
    "subscription": "subscriptions",
    "invoice": "invoices",
    "charge": "charges",
}
# Events whose object is gone for good (a cancelled subscription is not: it stays listed).
DELETING_EVENTS = {"customer.deleted", "invoice.deleted", "payment_method.detached"}
CARD_EXPAND = "data.invoice_settings.default_payment_method"
DISCOUNTS_EXPAND = "data.discounts"


def body_of(response: Any, what: str) -> dict[str, Any]:
    """A Stripe list envelope, or a clear error when something else answered."""
    try:
        body = json_of(response)
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise FatalAPIError(
            f"Stripe {what} did not answer with a list envelope",
            status=response.status_code,
            hint="check base_url points at https://api.stripe.com",
        )
    return body


def customer_ref(document: dict[str, Any]) -> str | None:
    """The customer a document belongs to (an event's: its object's), stored as the row's
    ``ref`` so the mappings find a customer's invoices, charges and events by index."""
    if document.get("object") == "event":
        data = document.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        document = obj if isinstance(obj, dict) else {}
    customer = document.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return str(customer) if customer not in (None, "") else None


def with_refs(records: list[RawRecord]) -> list[RawRecord]:
    """``records`` with each one's ``ref`` set to its customer (see ``customer_ref``)."""
    for record in records:
        if isinstance(record.data, dict):
            record.ref = customer_ref(record.data)
    return records


def split_customer(customer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A customer as events carry it (card as an id) and its expanded default card, if any."""
    settings = customer.get("invoice_settings")
    card = settings.get("default_payment_method") if isinstance(settings, dict) else None
    if not isinstance(card, dict):
        return customer, None
    customer = {
        **customer,
        "invoice_settings": {**settings, "default_payment_method": card.get("id")},
    }
    return customer, card


class StripeStream(Stream):
    """Base of the Stripe streams: records keep Stripe's shape; ``created`` is the cursor."""

    primary_key = "id"
    cursor_field = "created"

    def make_paginator(self) -> LastIdPaginator:
        return LastIdPaginator(limit=self.settings.page_size)

    def parse_response(self, response: Any) -> tuple[Any, list[Any]]:
        body = body_of(response, self.name)
        return body, body["data"]

    def to_raw(self, record: dict[str, Any]) -> RawRecord:
        raw = super().to_raw(record)
        raw.ref = customer_ref(record)
        return raw


class ObjectStream(StripeStream):
    """One resource listed in full once; afterwards ``events`` keeps its table current."""

    object_type: ClassVar[str] = ""
    incremental = ListOnce()


class CustomersStream(ObjectStream):
    """Customers (email, name, ``metadata.hubspot_company_id``, address, delinquent).

    Listed with their default card expanded; the card goes to ``payment_methods`` and the
    customer keeps its id, exactly as ``customer.*`` events carry it. ``pages()`` only wraps
    the ``ListOnce`` loop to tell the payment_methods stream which cards this listing saw.
    """

    name = "customers"
    path = "/v1/customers"
    object_type = "customer"
    incremental = ListOnce(sweep_unseen=True)
    params = {"expand[]": CARD_EXPAND}

    def prepare(self, ctx: SyncContext, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        customers, cards = [], []
        for record in records:
            customer, card = split_customer(record)
            customers.append(customer)
            if card is not None and card.get("id"):
                cards.append(
                    RawRecord(id=str(card["id"]), data=card, updated_at=str(card.get("created")))
                )
        if cards:
            # Written before the customers page commits: a crash re-reads both.
            ctx.store.write_page(ctx.connection, "payment_methods", with_refs(cards), None)
        seen = getattr(self.connector, "_cards_seen", None)
        if seen is not None:
            seen.update(c.id for c in cards)
        return customers

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        fresh = ctx.full_refresh or not (state or {}).get("complete")
        # The cards this listing brings, for the payment_methods stream that runs next.
        self.connector._cards_seen = set() if fresh and not (state or {}).get("resume") else None
        self.connector._cards_listed = False
        yield from super().pages(ctx, state)

    def finished(self, ctx: SyncContext, seen: set[str] | None) -> None:
        self.connector._cards_listed = True


class PaymentMethodsStream(ObjectStream):
    """Customers' default cards (brand, last4, expiry): derived, normally no request.

    When the customers stream has just listed everyone, the cards are already stored and
    this stream only confirms them (and tombstones cards no customer uses any more). Run
    alone (e.g. ``--stream payment_methods --full-refresh``) it lists customers itself.

    Its own ``pages()`` is why: in the common case it makes no request at all and writes
    from what the customers listing stored in this very run, which no strategy models.
    """

    name = "payment_methods"
    path = "/v1/customers"
    object_type = "payment_method"
    incremental = ListOnce(sweep_unseen=True)
    params = {"expand[]": CARD_EXPAND}

    def prepare(self, ctx: SyncContext, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [card for card in (split_customer(r)[1] for r in records) if card and card.get("id")]

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        state = {} if ctx.full_refresh else dict(state or {})
        if state.get("complete"):
            return
        if not getattr(self.connector, "_cards_listed", False) or state.get("resume"):
            yield from super().pages(ctx, state)
            return
        table = ctx.store.raw_table(ctx.connection, self.name).name
        seen = self.connector._cards_seen
        # In pages of CONFIRM_PAGE cards, not one page of every card: that page held every
        # card decoded at once (70 MB at 10,000 companies, the first sync's peak). The rows
        # read stop at the highest ``seq`` of the start, so rewritten ones are not met again;
        # the pages before the last leave the state alone (a crash confirms them again).
        (top,) = ctx.store.db.execute(f"SELECT coalesce(max(seq), 0) FROM [{table}]").fetchone()
        since, batch = 0, self._batch(ctx, table, 0, top)
        while len(batch) >= self.CONFIRM_PAGE:
            since = batch[-1]["seq"]
            yield Page(self._confirmed(batch, seen), None)
            batch = self._batch(ctx, table, since, top)
        raws = self._confirmed(batch, seen)
        if seen is not None:
            raws.extend(unseen_rows(ctx, self.name, seen))
        yield Page(raws, {"complete": True, "listed_at": clock.iso()}, done=True)

    CONFIRM_PAGE: ClassVar[int] = 1000

    def _batch(self, ctx: SyncContext, table: str, since: int, top: int) -> list[dict[str, Any]]:
        """Live rows after ``since`` up to ``top``: ``CONFIRM_PAGE`` or more, whole pages
        (a stored page's rows share one ``seq``), so the next batch starts after the last."""
        rows = ctx.store.raw_rows(table, since_seq=since, until_seq=top, include_deleted=False)
        batch: list[dict[str, Any]] = []
        try:
            for row in rows:
                if len(batch) >= self.CONFIRM_PAGE and row["seq"] != batch[-1]["seq"]:
                    break
                batch.append(row)
        finally:
            rows.close()  # type: ignore[attr-defined]
        return batch

    @staticmethod
    def _confirmed(rows: list[dict[str, Any]], seen: set[str] | None) -> list[RawRecord]:
        return with_refs(
            [
                RawRecord(id=row["id"], data=row["data"], updated_at=row["updated_at"])
                for row in rows
                if seen is None or row["id"] in seen
            ]
        )


class SubscriptionsStream(ObjectStream):
    """Subscriptions of every status (``status=all``: cancelled ones carry the churn reason),
    with their discounts expanded (coupon, start, end: MRR after discount needs them)."""

    name = "subscriptions"
    path = "/v1/subscriptions"
    object_type = "subscription"
    params = {"status": "all", "expand[]": DISCOUNTS_EXPAND}


class InvoicesStream(ObjectStream):
    """Invoices (status, due date, ``status_transitions.paid_at``, attempts, amounts)."""

    name = "invoices"
    path = "/v1/invoices"
    object_type = "invoice"
    incremental = ListOnce(sweep_unseen=True)


class ChargesStream(ObjectStream):
    """Charges (succeeded/failed, ``failure_code``, ``failure_message``)."""

    name = "charges"
    path = "/v1/charges"
    object_type = "charge"


class EventsStream(StripeStream):
    """The events log (kept beyond Stripe's 30 days) and the engine of incremental sync."""

    name = "events"
    path = "/v1/events"
    incremental = EventReplay(
        retention_days=EVENT_RETENTION_DAYS, forward_param="ending_before", time_field="created"
    )

    def apply_events(self, ctx: SyncContext, events: list[dict[str, Any]]) -> None:
        apply_events(ctx, events)


def apply_events(ctx: SyncContext, events: list[dict[str, Any]]) -> None:
    """Upsert each event's ``data.object`` into its object table (events in time order)."""
    batches: dict[str, dict[str, RawRecord]] = {}
    for event in events:
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        obj = data.get("object")
        if not isinstance(obj, dict) or not obj.get("id"):
            continue
        stream = OBJECT_STREAMS.get(str(obj.get("object")))
        if stream is None:
            continue  # e.g. charge.dispute.* carry a dispute: not one of our tables
        kind = str(event.get("type") or "")
        if stream == "customers":
            obj, card = split_customer(obj)
            previous = data.get("previous_attributes")
            old = None
            if isinstance(previous, dict) and isinstance(previous.get("invoice_settings"), dict):
                old = previous["invoice_settings"].get("default_payment_method")
            new = (obj.get("invoice_settings") or {}).get("default_payment_method")
            if isinstance(old, str) and old != new:
                # No longer this customer's card: it leaves the default-cards table.
                cards = batches.setdefault("payment_methods", {})
                if cards.get(old) is not None:
                    cards[old].deleted = True
                else:
                    cards[old] = _tombstone(ctx, old)
            if card is not None and card.get("id"):
                batches.setdefault("payment_methods", {})[card["id"]] = RawRecord(
                    id=str(card["id"]), data=card, updated_at=str(card.get("created"))
                )
        if stream == "subscriptions":
            obj = with_discounts(ctx, obj, batches.get("subscriptions", {}).get(str(obj["id"])))
        deleted = kind in DELETING_EVENTS or (
            stream == "payment_methods" and obj.get("customer") is None
        )
        record = RawRecord(
            id=str(obj["id"]), data=obj, updated_at=str(obj.get("created")), deleted=deleted
        )
        batches.setdefault(stream, {})[record.id] = record
    for stream, records in batches.items():
        rows = [r for r in records.values() if r is not None]
        if rows:
            ctx.store.write_page(ctx.connection, stream, with_refs(rows), None)


def with_discounts(
    ctx: SyncContext, sub: dict[str, Any], pending: RawRecord | None
) -> dict[str, Any]:
    """A subscription from an event (discounts as ids) with its discounts expanded: from the
    stored row (or this page's earlier snapshot) when known, else read once with
    ``expand[]=discounts`` (a discount added since the listing)."""
    ids = [d for d in sub.get("discounts") or [] if isinstance(d, str)]
    if not ids:
        return sub
    known: dict[str, Any] = {}
    previous = pending.data if pending is not None else None
    if previous is None:
        table = ctx.store.raw_table(ctx.connection, "subscriptions").name
        row = ctx.store.db.execute(f"SELECT data FROM [{table}] WHERE id = ?", [sub["id"]])
        found = row.fetchone()
        previous = ctx.store.decode_raw(found[0]) if found else None
    for d in (previous or {}).get("discounts") or []:
        if isinstance(d, dict) and d.get("id"):
            known[str(d["id"])] = d
    if any(i not in known for i in ids):
        try:
            response = ctx.client.get(
                f"/v1/subscriptions/{sub['id']}", params={"expand[]": "discounts"}
            )
            current = json_of(response)
        except (APIError, ValueError) as exc:  # e.g. deleted since: the ids stay
            ctx.note(f"subscription {sub['id']}: discounts not read ({exc})")
            current = {}
        for d in (current if isinstance(current, dict) else {}).get("discounts") or []:
            if isinstance(d, dict) and d.get("id"):
                known[str(d["id"])] = d
    return {
        **sub,
        "discounts": [known.get(d, d) if isinstance(d, str) else d for d in sub["discounts"]],
    }


def _tombstone(ctx: SyncContext, card_id: str) -> RawRecord | None:
    table = ctx.store.raw_table(ctx.connection, "payment_methods").name
    row = ctx.store.db.execute(
        f"SELECT data, updated_at FROM [{table}] WHERE id = ? AND deleted = 0", [card_id]
    ).fetchone()
    if row is None:
        return None
    return RawRecord(id=card_id, data=ctx.store.decode_raw(row[0]), updated_at=row[1], deleted=True)
