"""Stripe fake: billing history generated per company on demand (the "lazy" account).

Seeding used to run every company's last six billing periods through the simulation up front
(~2 million invoices, charges and events at 100k companies: 12 s of CPU before the first
answer). Now ``seed()`` only fixes what is cheap and known from the world: each company's
customer and subscription ids and the e-mail index; the first listing of a kind adds, per
company, an upper bound on the ``created`` of the objects of that kind it will hold
(``_bounds``). A company's records are *materialised* (its
history run through the same machinery as before, on its own random stream and its own id
space) the first time anything needs them:

- retrieving or writing one of its objects, or a list filtered on its customer;
- a list across all customers, walking newest first: the list's keys hold every object of the
  companies whose bound is above a *frontier*; when a page reaches below the frontier, the
  companies just under it are materialised (in batches that grow, so a full listing sorts
  the key list a few dozen times, not once per company) and the page is read again;
- ``advance()`` (the simulation moves every company) and the test helpers that count.

Charges and events are a third of a history's cost and are read only through their own lists
and ids, so a company is first materialised without them (``_NO_EVENTS``) for anything else:
the run is the same (same random draws, ids and states), but each charge and event it makes
is held back in order (``_LazyState.pending``: the charge, or the event's type, time, object
snapshot and previous attributes) instead of stored. Retrieving one, listing charges or
events, a customer's charges, ``advance()`` or a count stores them (``_complete``), with the
ids a complete run gives; writes made in between take account-wide ids as always, so the
account is the same whichever order things are asked in (``tests/test_sandbox_stripe_lazy.py``).

Ids are ``prefix_TAG`` + 10 hex digits: the company's slot (key + 1) in the top 24 bits and a
counter of that company's objects of the prefix in the low 16, so an id names its company and
does not depend on which companies were materialised before. Objects created after seeding
(``advance``, API writes) take ids from one account-wide counter above every slot.
"""

from __future__ import annotations

import functools
import heapq
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hub.sandbox.base import rng_for
from hub.sandbox.memory import FREEZE_FROM
from hub.sandbox.memory import gc_paused as _gc_paused
from hub.sandbox.stripe import draws
from hub.sandbox.stripe.constants import (
    _SHIFT,
    DAY,
    DAYS_UNTIL_DUE,
    HISTORY_DAYS,
    HOUR,
    KINDS,
    RETRY_OFFSETS,
    UNCOLLECTIBLE_AFTER,
)
from hub.sandbox.stripe.records import _anchor_of, _month_info, _ym

_SLOT_BITS = 16  # objects of one prefix per company at seed: far more than six periods make
POST_SEED_BASE = 0xF0_0000_0000  # ids minted after seeding: above every company's slot
_SLOT_MAX = (1 << _SLOT_BITS) - 1
_BOTTOM = -(1 << 80)  # below every key and bound
_FIRST_BATCH = 256
_MAX_BATCH = 4096
_WARM_SLICE = 0.005  # seconds the warm-up holds the fake's lock at a time
_PAYMENTS = ("charge", "event")
# How far a company is generated (``_LazyState.done``): not at all, all but its charges and
# events (what lists and retrievals of every other kind need: those two are a third of the
# work, and are read only through their own lists and ids), complete.
_NO_EVENTS, _COMPLETE = 1, 2
_DEFERRED = ("charge", "event")  # the kinds only a complete company has
# Payment attempts after a renewal (finalized an hour later, then the retries) and when an
# unpaid invoice is due and written off.
_ATTEMPTS = tuple(HOUR + sum(RETRY_OFFSETS[:i]) for i in range(len(RETRY_OFFSETS) + 1))
_DUE = HOUR + DAYS_UNTIL_DUE * DAY
_WRITE_OFF = UNCOLLECTIBLE_AFTER


def company_of(obj_id: str, companies: int) -> int | None:
    """The world company whose seeded history holds ``obj_id`` (None: not a seeded object)."""
    try:
        slot = int(obj_id[-10:], 16) >> _SLOT_BITS
    except ValueError:
        return None
    return slot - 1 if 1 <= slot <= companies else None


def seeded_counter(company_key: int, n: int) -> int:
    return ((company_key + 1) << _SLOT_BITS) | n


@dataclass
class _Frontier:
    """Companies in descending order of one kind's bound, and how far listing has reached."""

    order: list[int]  # company keys, highest bound first
    neg_bounds: list[int]  # -(bound key), ascending
    ptr: int = 0
    step: int = _FIRST_BATCH


@dataclass
class _LazyState:
    now: int  # the seed's clock: histories are generated up to here whenever materialised
    done: bytearray  # per company: 0, _NO_EVENTS or _COMPLETE
    left: int  # companies not generated at all
    frontiers: dict[str, _Frontier]  # made on each kind's first listing
    side: dict[int, dict[str, list[int]]] = field(default_factory=dict)  # keys not listed yet
    # Companies generated without charges and events: what they held back (``_complete``).
    pending: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)


class _LazyStore(dict):  # type: ignore[type-arg]
    """One kind's records by id; reading an id of a company not materialised yet makes it."""

    __slots__ = ("_api", "_need")

    def __init__(self, api: Any, kind: str = ""):
        super().__init__()
        self._api = api
        self._need = _COMPLETE if kind in _DEFERRED else _NO_EVENTS

    def __missing__(self, key: str) -> Any:
        if self._api._materialise_id(key, self._need):
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        value = dict.get(self, key)
        if value is None and self._api._materialise_id(key, self._need):
            value = dict.get(self, key)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (
            isinstance(key, str)
            and self._api._materialise_id(key, self._need)
            and dict.__contains__(self, key)
        )

    # Whole-store reads see every company.
    def values(self) -> Any:  # type: ignore[override]
        self._api._materialise_all()
        return dict.values(self)

    def items(self) -> Any:  # type: ignore[override]
        self._api._materialise_all()
        return dict.items(self)

    def keys(self) -> Any:  # type: ignore[override]
        self._api._materialise_all()
        return dict.keys(self)

    def __iter__(self) -> Any:
        self._api._materialise_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._api._materialise_all()
        return dict.__len__(self)


class _Lazy:
    """Plan the account at seed; materialise a company's history when something needs it."""

    # -- seed: ids, indexes and bounds, no history -------------------------------------

    def _plan_lazy(self, now: int) -> None:
        companies = self.world.companies
        tag = self._tag
        for company in companies:
            key = company.key
            cus_id = f"cus_{tag}{seeded_counter(key, 1):010X}"
            self._by_email[company.billing_email].append(cus_id)
            self._customer_by_company[key] = cus_id
            self._company_by_customer[cus_id] = key
            self._sub_by_company[key] = f"sub_{tag}{seeded_counter(key, 1):010X}"
        self._lazy = _LazyState(now, bytearray(len(companies)), len(companies), {})

    def _frontier(self, state: _LazyState, kind: str) -> _Frontier:
        """Companies by descending bound for ``kind`` (made on the kind's first listing;
        charges and events share one pass over the world)."""
        front = state.frontiers.get(kind)
        if front is not None:
            return front
        wanted = _PAYMENTS if kind in _PAYMENTS else (kind,)
        pairs: dict[str, list[tuple[int, int]]] = {k: [] for k in wanted}
        seed, now = self.world.seed, state.now
        for company in self.world.companies:
            for k, ts in _bounds(company, now, seed, wanted).items():
                if k in pairs:
                    # The company's highest possible key at that second: ties (companies
                    # billed at the same moment) are then ordered as the list orders them.
                    top = (ts << _SHIFT) | seeded_counter(company.key, _SLOT_MAX)
                    pairs[k].append((-top, company.key))
        made = {}
        for k, found in pairs.items():
            found.sort()
            made[k] = _Frontier([c for _, c in found], [b for b, _ in found])
        # Computed outside the lock (0.2-0.8 s at 100k): the first thread to finish installs
        # it, so a frontier another thread has started walking is never replaced.
        with self._lock:
            for k, front in made.items():
                state.frontiers.setdefault(k, front)
            return state.frontiers[kind]

    # -- materialising -----------------------------------------------------------------

    def _materialise_id(self, obj_id: str, need: int = _NO_EVENTS) -> bool:
        """Materialise the company ``obj_id`` belongs to (``need``: ``_COMPLETE`` for an
        event's company); False if there was nothing to do."""
        state = self._lazy
        if state is None or not isinstance(obj_id, str):
            return False
        key = company_of(obj_id, len(state.done))
        if key is None or state.done[key] >= need:
            return False
        with self._lock, _gc_paused():
            self._materialise(key, events=need >= _COMPLETE)
        return True

    def _materialise_company(self, company_key: int) -> None:
        state = self._lazy
        if state is not None and state.done[company_key] < _COMPLETE:
            with self._lock, _gc_paused():
                self._materialise(company_key)

    def _materialise(self, key: int, events: bool = True) -> None:
        """Run one company's seeded history (its own random stream, ids and heap); without
        ``events``, its events are left for when something asks for them."""
        state = self._lazy
        assert state is not None
        level = state.done[key]
        if level >= (_COMPLETE if events else _NO_EVENTS):
            return
        if level:
            self._complete(key)
            return
        state.done[key] = _COMPLETE if events else _NO_EVENTS
        state.left -= 1
        saved = (self._rng, self._heap, self._heap_seq)
        try:
            pending = self._run_history(key, quiet=not events)
            if not events:
                state.pending[key] = self._pending
        finally:
            state.side[key] = self._side_keys
            self._rng, self._heap, self._heap_seq = saved
            self._end_history()
        for entry in pending:
            heapq.heappush(self._heap, entry)

    def _complete(self, key: int) -> None:
        """Store the charges and events a company generated without them held back, in the
        order it made them (so event ids are those a complete generation gives)."""
        state = self._lazy
        assert state is not None
        pending = state.pending.pop(key)
        self._slot = key
        self._slot_counts = {}
        self._side_keys = {kind: [] for kind in _DEFERRED}
        by_customer, self._by_customer["charge"] = self._by_customer["charge"], defaultdict(list)
        try:
            for entry in pending:
                if len(entry) == 3:
                    self._add(*entry)
                else:
                    self._record_event(*entry)
            made = self._by_customer["charge"]
        finally:
            self._by_customer["charge"] = by_customer
            self._end_history()
        for customer, ids in made.items():
            # Seeded charges come before any the API made since (their ids are lower).
            by_customer[customer][:0] = ids
        # Not listed yet: these kinds' frontiers reach a company only once it is complete.
        state.side.setdefault(key, {}).update(self._side_keys)
        state.done[key] = _COMPLETE

    def _run_history(self, key: int, quiet: bool) -> list[Any]:
        """Generate company ``key``'s seeded history into the current stores; returns what
        it scheduled after the seed's clock (``quiet``: no events)."""
        state = self._lazy
        assert state is not None
        self._rng = rng_for(self.world.seed, "stripe", "company", key)
        self._heap = []
        self._heap_seq = 0
        self._slot = key
        self._slot_counts = {}
        self._side_keys = {kind: [] for kind in KINDS}
        self._frozen_now = state.now
        self._emit_from = state.now - HISTORY_DAYS * DAY
        self._quiet = quiet
        self._pending = []
        self._seed_company(self.world.companies[key], self._rng, state.now)
        self._run_until(state.now + 1, seeding=True)
        self._script.pop(self._sub_by_company[key], None)
        return self._heap

    def _end_history(self) -> None:
        self._slot = None
        self._frozen_now = None
        self._emit_from = 0
        self._quiet = False
        self._pending = []

    def _ensure_listed(self, kind: str, low_key: int) -> bool:
        """Make the list keys of ``kind`` hold every object whose key is >= ``low_key``.

        Returns True when keys were added (the caller reads its page again)."""
        state = self._lazy
        if state is None:
            return False
        front = self._frontier(state, kind)
        n = len(front.order)
        if front.ptr >= n or -front.neg_bounds[front.ptr] < low_key:
            return False
        with self._lock, _gc_paused(freeze=len(state.done) >= FREEZE_FROM):
            # The next batch down, not everything above ``low_key``: a page that ran out of
            # listed keys reports the bottom of its range, and the caller asks again.
            i = front.ptr
            j = min(n, i + front.step)
            front.step = min(front.step * 2, _MAX_BATCH)
            added: list[int] = []
            need, events = (_COMPLETE, True) if kind in _DEFERRED else (_NO_EVENTS, False)
            for company_key in front.order[i:j]:
                if state.done[company_key] < need:
                    self._materialise(company_key, events=events)
                side = state.side.get(company_key)
                if side is not None:
                    added.extend(side.pop(kind, ()))
                    if not side:
                        del state.side[company_key]
            front.ptr = j
            keys = self._keys[kind]
            keys.extend(added)
            keys.sort()
        return True

    def _materialise_all(self) -> None:
        """Every company's history, and every key listed (``advance``, counts, whole-store reads)."""
        state = self._lazy
        if state is None:
            return
        with self._lock:
            if self._lazy is None:
                return
            # Events first: every company is then generated once, complete.
            for kind in sorted(KINDS, key=lambda k: k != "event"):
                self._frontier(state, kind).step = len(state.done)  # one batch, one sort
                while self._ensure_listed(kind, _BOTTOM):
                    pass
            self._lazy = None

    # -- warm-up ---------------------------------------------------------------------

    def warm_up(self, stop: threading.Event | None = None, limit: int | None = None) -> int:
        """Generate every company not generated yet, newest invoices first (the order an
        invoice list reaches them), then list every kind, so a first pass over any list
        reads only what is made; returns the companies generated.

        A slice of about ``_WARM_SLICE`` seconds at a time under the fake's lock, so requests
        arriving meanwhile wait at most a slice and still generate what they need first (the
        account is the same whichever comes first). Stops early when ``stop`` is set,
        after ``limit`` companies, or when ``_materialise_all`` (``advance()``) took over."""
        state = self._lazy
        if state is None:
            return 0
        order = self._frontier(state, "invoice").order
        made, i, n = 0, 0, len(order)
        freeze = len(state.done) >= FREEZE_FROM  # keep what is made out of later collections
        while i < n:
            if (stop is not None and stop.is_set()) or (limit is not None and made >= limit):
                return made
            with self._lock, _gc_paused(freeze=freeze):
                if self._lazy is not state:
                    return made
                until = time.perf_counter() + _WARM_SLICE
                while i < n and (limit is None or made < limit):
                    key = order[i]
                    i += 1
                    if state.done[key] < _COMPLETE:
                        self._materialise(key)
                        made += 1
                        if time.perf_counter() >= until:
                            break
            time.sleep(0.0005)  # let a waiting request take the lock
        for kind in sorted(KINDS, key=lambda k: k != "invoice"):
            front = self._frontier(state, kind)
            front.step = min(front.step, _MAX_BATCH)
            while not (stop is not None and stop.is_set()):
                # Every company is generated: each batch only moves its keys and sorts.
                if self._lazy is not state or not self._ensure_listed(kind, _BOTTOM):
                    break
                time.sleep(0.0005)
        with self._lock:
            if self._lazy is state and not (stop is not None and stop.is_set()):
                self._lazy = None  # every company generated and listed: as _materialise_all
        return made


@functools.lru_cache(maxsize=64)
def _month_index(ts: int) -> int:
    year, month = _ym(ts)
    return year * 12 + month - 1


def _bounds(company: Any, now: int, seed: int, kinds: Any = KINDS) -> dict[str, int]:
    """Upper bounds on ``created`` of each kind of object a company's seeded history holds
    (``tests/test_sandbox_stripe_lazy.py`` checks them against the materialised objects).

    Each is the latest moment, not after ``now``, at which the simulation could make such an
    object: renewals, finalizations and payment attempts fall on fixed offsets from the
    billing anchor, and the few drawn moments come from ``draws.py``."""
    created = int(company.created_at.timestamp())
    out = {"customer": created, "subscription": created + 300}
    has_card = "no_payment_method" not in company.traps
    out["payment_method"] = created + 60 if has_card else -1
    if not any(kind in kinds for kind in ("invoice", "charge", "event")):
        return out
    anchor = _anchor_of(created + 300)
    key, archetype = company.key, company.archetype
    year, month, day, sod = anchor

    def renewal(k: int) -> int:  # ``_boundary`` inlined: a few per company, 100k companies
        idx = year * 12 + month - 1 + k
        start, days = _month_info(idx // 12, idx % 12 + 1)
        return start + (min(day, days) - 1) * DAY + sod

    top = _month_index(now) - (year * 12 + month - 1)
    if top > 0 and renewal(top) > now:
        top -= 1
    top = max(top, 0)
    if "charge" not in kinds and "event" not in kinds:
        # Invoices are made at renewals only: the last one not after ``now`` bounds them
        # (a churned company's last is earlier: still a bound).
        out["invoice"] = renewal(top) if renewal(top) <= now else -1
        return out
    extra: list[int] = []
    if archetype == "churned":
        asked, _, last_k, ends = draws.churn(seed, key, anchor, top, now)
        top = min(top, last_k + 1)
        extra += (asked, ends)
    elif archetype == "expanding":
        extra.append(draws.seats_at(seed, key, now))
    renewals = [renewal(k) for k in range(max(0, top - 4), top + 1)]
    out["invoice"] = draws.latest(renewals, now, -1)
    send_invoice = (
        not has_card
        or (company.plan == "enterprise" and archetype != "at_risk")
        or (archetype == "slipping" and key % 4 == 1)
    )
    if send_invoice:
        # Paid within three weeks, or 2-12 days past the 30-day due date; else overdue at
        # the due date and written off 30 days later.
        pays = [draws.invoice_paid_at(seed, key, b, False) for b in renewals[-2:]]
        pays += [draws.invoice_paid_at(seed, key, b, True) for b in renewals[-3:-1]]
        charges = pays
        events = [b + o for b in renewals for o in (0, HOUR, _DUE, _DUE + _WRITE_OFF)] + pays
    else:
        settled = archetype in ("healthy", "expanding", "churned")
        offsets = (HOUR,) if settled else _ATTEMPTS
        charges = [b + o for b in renewals for o in offsets]
        events = charges + renewals
        if not settled:
            events += [b + _ATTEMPTS[-1] + _WRITE_OFF for b in renewals]
    out["charge"] = draws.latest(charges, now, -1) if has_card else -1
    out["event"] = draws.latest(events + extra, now, -1)
    return out
