"""Stripe fake: the ``StripeAPI`` class (state, ids, indexes, test helpers) assembled from its parts."""

from __future__ import annotations

import bisect
import heapq
import threading
from collections import defaultdict
from typing import Any

from hub.sandbox.base import (
    FakeAPI,
    SlidingWindow,
    rng_for,
)
from hub.sandbox.stripe.account import _Account
from hub.sandbox.stripe.constants import (
    _CLIENT_FAULTS,
    _ID_PREFIX,
    _MASK,
    _SHIFT,
    CURRENT_API_VERSION,
    DAY,
    EVENT_RETENTION,
    KINDS,
    LEGACY_API_VERSION,
    RESOURCES,
)
from hub.sandbox.stripe.encoded import _Encoded
from hub.sandbox.stripe.lazy import _SLOT_BITS, POST_SEED_BASE, _Lazy, _LazyStore
from hub.sandbox.stripe.lists import _Lists
from hub.sandbox.stripe.payments import _Payments
from hub.sandbox.stripe.plumbing import _Protocol
from hub.sandbox.stripe.records import _SNAP, _Event
from hub.sandbox.stripe.render_billing import _RenderBilling
from hub.sandbox.stripe.render_objects import _RenderObjects
from hub.sandbox.stripe.routes import _Routes
from hub.sandbox.stripe.seeding import _Seeding
from hub.sandbox.stripe.simulation import _Simulation
from hub.sandbox.stripe.variety import _Variety
from hub.sandbox.stripe.webhooks import send_event
from hub.sandbox.world import PLANS

# -- the fake --------------------------------------------------------------------------------


class StripeAPI(
    _Payments,
    _Account,
    _Routes,
    _Lists,
    _Protocol,
    _RenderBilling,
    _RenderObjects,
    _Simulation,
    _Variety,
    _Seeding,
    _Lazy,
    _Encoded,
    FakeAPI,
):
    """Stateful fake of the Stripe API (v1) over the seeded world."""

    name = "stripe"
    seed_rank = 0  # seeding only plans ids (0.3 s at 100k): histories are made on demand (lazy.py)
    prefixes = ("/v1/",)
    fault_kinds = frozenset({*_CLIENT_FAULTS, "cursor_expired"})

    def __init__(self, sandbox: Any):
        super().__init__(sandbox)
        seed = self.world.seed
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        r = rng_for(seed, "stripe", "tag")
        self._tag = "".join(r.choice(alphabet) for _ in range(4))
        self._counters: dict[str, int] = defaultdict(int)
        self._store: dict[str, dict[str, Any]] = {kind: _LazyStore(self, kind) for kind in KINDS}
        # Ascending sort keys per kind: ``created << 40 | id counter`` (ids end in the counter),
        # so ordering by (created, id) is an int sort and a key turns back into its id. While
        # companies are still unmaterialised it holds those above each kind's frontier.
        self._keys: dict[str, list[int]] = {kind: [] for kind in KINDS}
        self._by_customer: dict[str, dict[str, list[str]]] = {
            k: defaultdict(list) for k in ("payment_method", "subscription", "invoice", "charge")
        }
        self._by_email: dict[str, list[str]] = defaultdict(list)
        self._customer_by_company: dict[int, str] = {}
        self._company_by_customer: dict[str, int] = {}
        self._sub_by_company: dict[int, str] = {}
        self._heap: list[tuple[int, int, str, str, Any]] = []
        # Seeded histories number their schedule from 0 (per company), later ones from here,
        # so heap order never depends on which companies were materialised first.
        self._heap_seq = 1 << 32
        self._emit_from = 0  # no events for changes before this (seed history)
        self._lazy: Any = None  # lazy.py's state until every company is materialised
        self._slot: int | None = None  # the company being materialised
        self._slot_counts: dict[str, int] = {}
        self._side_keys: dict[str, list[int]] = {}
        self._frozen_now: int | None = None
        self._quiet = False  # generating a history without its charges and events (lazy.py)
        self._pending: list[tuple[Any, ...]] = []  # what a quiet history holds back
        self._numbers: dict[str, int] = {}  # invoices numbered per customer
        self._encoded_init()
        self._script: dict[str, dict[str, Any]] = {}  # seed-only outcomes per subscription
        self._rng = rng_for(seed, "stripe", "seed")
        self._idempotency: dict[str, tuple[Any, int, bytes, dict[str, str], int]] = {}
        self._windows: dict[str, SlidingWindow] = {}
        self._local = threading.local()
        self._request_seq = 0
        start = int(self.world.start.timestamp())
        self._version_upgraded_at = start - 20 * DAY
        self._prices = {
            plan: {
                "id": f"price_{self._tag}{plan.capitalize()}Seat",
                "unit_amount": amount,
                "nickname": f"Lumen {plan.capitalize()} (per seat)",
                "created": start - 900 * DAY,
            }
            for plan, amount in PLANS.items()
        }
        for plan, amount in PLANS.items():  # yearly: ten months' price, billed once a year
            self._prices[f"{plan}_yearly"] = {
                "id": f"price_{self._tag}{plan.capitalize()}SeatYearly",
                "unit_amount": amount * 10,
                "nickname": f"Lumen {plan.capitalize()} (per seat, yearly)",
                "created": start - 900 * DAY,
                "interval": "year",
            }
        self._prices["analytics"] = {
            "id": f"price_{self._tag}AnalyticsSeat",
            "unit_amount": 800,
            "nickname": "Lumen Analytics add-on (per seat)",
            "created": start - 500 * DAY,
            "product": f"prod_{self._tag}Analytics",
        }
        self._product = f"prod_{self._tag}Lumen"
        # The account's "manage failed payments" settings: what happens when the last retry
        # fails. Set them through ``build_sandbox(options={"stripe": {...}})`` (before seeding).
        self.dunning_subscription = "past_due"  # past_due | unpaid | cancel
        self.dunning_invoice = "open"  # open (left past due) | uncollectible

    # -- ids, time, indexes ------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        slot = self._slot
        if slot is not None:  # a seeded history: the company's own id space (``seeded_counter``)
            counts = self._slot_counts
            n = counts[prefix] = counts.get(prefix, 0) + 1
            return f"{prefix}_{self._tag}{((slot + 1) << _SLOT_BITS) | n:010X}"
        n = self._counters[prefix] = self._counters[prefix] + 1
        return f"{prefix}_{self._tag}{POST_SEED_BASE + n:010X}"

    def _now(self) -> int:
        if self._frozen_now is not None:  # materialising: the history ends at the seed's clock
            return self._frozen_now
        return self.world.clock.ts()

    def _add(self, kind: str, rec: Any, customer: str | None = None) -> None:
        if self._quiet and kind == "charge":  # stored with the company's events (lazy.py)
            self._pending.append((kind, rec, customer))
            return
        rec_id = rec.id
        dict.__setitem__(self._store[kind], rec_id, rec)
        key = (rec.created << _SHIFT) | int(rec_id[-10:], 16)
        if customer is not None:
            self._by_customer[kind][customer].append(rec_id)
        if self._slot is not None:  # listed when the kind's frontier reaches the company
            self._side_keys[kind].append(key)
            return
        keys = self._keys[kind]
        if not keys or key >= keys[-1]:
            keys.append(key)
        else:  # lands near the end: list.insert moves only the few newer keys
            bisect.insort(keys, key)

    def _id_of(self, kind: str, key: int) -> str:
        return f"{_ID_PREFIX[kind]}_{self._tag}{key & _MASK:010X}"

    @staticmethod
    def _key_of(rec: Any) -> int:
        return (rec.created << _SHIFT) | int(rec.id[-10:], 16)

    def _schedule(self, ts: int, action: str, target: str, extra: Any = None) -> None:
        # (ts, seq, ...) tuples: the heap's order is the tuples', whatever the push order.
        self._heap_seq += 1
        heapq.heappush(self._heap, (ts, self._heap_seq, action, target, extra))

    def _emit(
        self,
        type_: str,
        ts: int,
        kind: str,
        rec: Any,
        prev: dict[str, Any] | None = None,
        request: tuple[str | None, str | None] = (None, None),
    ) -> None:
        if ts < self._emit_from:
            return
        if self._quiet:  # the event is made when the company's events are asked for (lazy.py)
            self._pending.append((type_, ts, kind, rec.id, _SNAP[kind](rec), prev, request))
            return
        self._record_event(type_, ts, kind, rec.id, _SNAP[kind](rec), prev, request)

    def _record_event(
        self,
        type_: str,
        ts: int,
        kind: str,
        obj_id: str,
        state: tuple[Any, ...],
        prev: dict[str, Any] | None,
        request: tuple[str | None, str | None],
    ) -> None:
        version = CURRENT_API_VERSION if ts >= self._version_upgraded_at else LEGACY_API_VERSION
        event = _Event(
            self._new_id("evt"),
            type_,
            ts,
            version,
            kind,
            obj_id,
            state,
            prev,
            request[0],
            request[1],
        )
        self._add("event", event)
        if self.sandbox.webhooks is not None and self._slot is None:
            send_event(self, event)

    # -- test helpers ------------------------------------------------------------------

    def customer_id_for(self, company_key: int) -> str:
        """The Stripe customer id of a world company (the link is private, not in metadata)."""
        return self._customer_by_company[company_key]

    def subscription_id_for(self, company_key: int) -> str:
        return self._sub_by_company[company_key]

    def company_key_for(self, customer_id: str) -> int | None:
        return self._company_by_customer.get(customer_id)

    def offer_coupon(self, company_key: int, coupon: str) -> None:
        """Put a coupon (``variety.COUPONS``) on the company's subscription now, as the
        retention offers of ``advance()`` do (``customer.subscription.updated``)."""
        with self._lock:
            sub_id = self._sub_by_company[company_key]
            self._do_discount(self._now(), sub_id, coupon, False)
            self._invalidate_encoded()

    def count(self, resource: str) -> int:
        """How many objects a full listing returns (events: only the last 30 days)."""
        kind = RESOURCES.get(resource, resource)
        self._materialise_all()
        if kind == "event":
            keys = self._keys["event"]
            return len(keys) - bisect.bisect_left(keys, (self._now() - EVENT_RETENTION) << _SHIFT)
        return len(self._store[kind])

    def get(self, resource: str, obj_id: str) -> dict[str, Any]:
        """Render one object as the API would (current version)."""
        kind = RESOURCES.get(resource, resource)
        return self._render(kind, self._store[kind][obj_id], legacy=False)
