"""Book metrics: MRR movements and retention per owner (CSM), segment or plan, for a period.

An account belongs, for the whole period, to the book of the owner it had at the period
start: the last ``owner_changed`` event (attrs ``from``, ``to``; the CRM mapping emits them
from the owner's property history) before the start, else the ``from`` of the first one after
it, else the account's current owner. A change of owner during the period is reported
(``owner_changes``), never counted in two books. The segment is the health engine's current
segment; the plan is the plan of the account's largest subscription at the period start (at
its first payment for accounts that start during the period).

Per book, over every account that paid at some point of the period:

- movements: opening (starting) MRR, new, reactivation, expansion, contraction, churn,
  closing; always ``closing − opening = new + reactivation + expansion − contraction − churn``
  (checked by ``Book.reconciles``);
- retention, over the accounts that paid at the period start only:
  NRR = (start + expansion − contraction − churn) ÷ start and GRR = (start − contraction −
  churn) ÷ start (a starting account that leaves and returns within the period counts its
  return as expansion, so NRR is exactly their closing MRR ÷ their starting MRR);
- logo churn: starting accounts that pay nothing at the period end, and their share;
- churn MRR by cancellation reason;
- accounts and closing MRR per health band at the period end, average health at the end and
  its change since the start (from ``health_history``);
- LTV = ARPA × expected lifetime, ARPA = closing MRR ÷ paying accounts at the end, expected
  lifetime = 1 ÷ monthly logo churn rate of the period (capped at ``ltv_max_months``).

Money is in cents inside and dollars in ``as_dict()``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from hub.portfolio.movements import build_movements
from hub.portfolio.settings import Period, PortfolioSection
from hub.store import Store

By = Literal["owner", "segment", "plan"]
NOBODY = "(unassigned)"


@dataclass
class AccountPeriod:
    """One account's figures for the period, in cents."""

    account_id: str
    name: str
    owner_id: str
    segment: str
    plan: str
    opening: int
    closing: int
    new: int = 0
    expansion: int = 0
    contraction: int = 0
    churn: int = 0
    reactivation: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    band: str | None = None
    score_end: float | None = None
    score_start: float | None = None
    owner_changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Book:
    """The totals of one book (or of the whole portfolio), in cents."""

    key: str
    label: str
    accounts: int = 0
    starting_accounts: int = 0
    opening: int = 0
    new: int = 0
    reactivation: int = 0
    expansion: int = 0
    contraction: int = 0
    churn: int = 0
    closing: int = 0
    # Retention components: accounts that paid at the period start only.
    kept_expansion: int = 0
    kept_contraction: int = 0
    kept_churn: int = 0
    logos_lost: int = 0
    paying_at_end: int = 0
    churn_by_reason: dict[str, int] = field(default_factory=dict)
    bands: dict[str, dict[str, int]] = field(default_factory=dict)
    scores_end: list[float] = field(default_factory=list)
    scores_start: list[float] = field(default_factory=list)
    owner_changes: list[dict[str, Any]] = field(default_factory=list)
    months: float = 1.0
    ltv_max_months: int = 60

    def add(self, a: AccountPeriod) -> None:
        self.accounts += 1
        self.opening += a.opening
        self.closing += a.closing
        self.new += a.new
        self.reactivation += a.reactivation
        self.expansion += a.expansion
        self.contraction += a.contraction
        self.churn += a.churn
        if a.opening > 0:
            self.starting_accounts += 1
            self.kept_expansion += a.expansion + a.reactivation + a.new
            self.kept_contraction += a.contraction
            self.kept_churn += a.churn
            if a.closing <= 0:
                self.logos_lost += 1
        if a.closing > 0:
            self.paying_at_end += 1
        if a.reasons:
            for reason, cents in a.reasons.items():
                self.churn_by_reason[reason] = self.churn_by_reason.get(reason, 0) + cents
        slot = self.bands.get(a.band or "unscored")
        if slot is None:
            slot = self.bands[a.band or "unscored"] = {"accounts": 0, "mrr": 0}
        slot["accounts"] += 1
        slot["mrr"] += a.closing
        if a.score_end is not None:
            self.scores_end.append(a.score_end)
        if a.score_start is not None:
            self.scores_start.append(a.score_start)
        if a.owner_changes:
            self.owner_changes.extend(a.owner_changes)

    def merge(self, other: Book) -> None:
        """Add another book's figures (the total is the merge of the books)."""
        for name in (
            "accounts",
            "starting_accounts",
            "opening",
            "new",
            "reactivation",
            "expansion",
            "contraction",
            "churn",
            "closing",
            "kept_expansion",
            "kept_contraction",
            "kept_churn",
            "logos_lost",
            "paying_at_end",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, cents in other.churn_by_reason.items():
            self.churn_by_reason[reason] = self.churn_by_reason.get(reason, 0) + cents
        for band, slot in other.bands.items():
            mine = self.bands.setdefault(band, {"accounts": 0, "mrr": 0})
            mine["accounts"] += slot["accounts"]
            mine["mrr"] += slot["mrr"]
        self.scores_end.extend(other.scores_end)
        self.scores_start.extend(other.scores_start)
        self.owner_changes.extend(other.owner_changes)

    @property
    def net(self) -> int:
        return self.new + self.reactivation + self.expansion - self.contraction - self.churn

    def reconciles(self) -> bool:
        """Movements add up to the change in MRR (exact: integer cents)."""
        return self.closing - self.opening == self.net

    @property
    def nrr(self) -> float | None:
        if self.opening <= 0:
            return None
        return (
            self.opening + self.kept_expansion - self.kept_contraction - self.kept_churn
        ) / self.opening

    @property
    def grr(self) -> float | None:
        if self.opening <= 0:
            return None
        return (self.opening - self.kept_contraction - self.kept_churn) / self.opening

    @property
    def logo_churn_rate(self) -> float | None:
        return self.logos_lost / self.starting_accounts if self.starting_accounts else None

    @property
    def avg_health(self) -> float | None:
        return sum(self.scores_end) / len(self.scores_end) if self.scores_end else None

    @property
    def health_change(self) -> float | None:
        if not self.scores_end or not self.scores_start:
            return None
        return self.avg_health - sum(self.scores_start) / len(self.scores_start)  # type: ignore[operator]

    @property
    def ltv(self) -> float | None:
        """ARPA × expected lifetime (1 ÷ monthly logo churn), in cents; None without payers."""
        if not self.paying_at_end:
            return None
        arpa = self.closing / self.paying_at_end
        rate = self.logo_churn_rate
        monthly = (rate / self.months) if rate and self.months > 0 else 0.0
        lifetime = min(1 / monthly, self.ltv_max_months) if monthly > 0 else self.ltv_max_months
        return arpa * lifetime

    def as_dict(self) -> dict[str, Any]:
        def d(cents: float | None) -> float | None:
            return None if cents is None else round(cents / 100, 2)

        def pct(x: float | None) -> float | None:
            return None if x is None else round(x * 100, 1)

        return {
            "key": self.key,
            "label": self.label,
            "accounts": self.accounts,
            "starting_accounts": self.starting_accounts,
            "starting_mrr": d(self.opening),
            "new": d(self.new),
            "reactivation": d(self.reactivation),
            "expansion": d(self.expansion),
            "contraction": d(self.contraction),
            "churn": d(self.churn),
            "closing_mrr": d(self.closing),
            "nrr_pct": pct(self.nrr),
            "grr_pct": pct(self.grr),
            "logos_lost": self.logos_lost,
            "logo_churn_pct": pct(self.logo_churn_rate),
            "churn_by_reason": {k: d(v) for k, v in sorted(self.churn_by_reason.items())},
            "health_bands": {
                k: {"accounts": v["accounts"], "mrr": d(v["mrr"])}
                for k, v in sorted(self.bands.items())
            },
            "avg_health": None if self.avg_health is None else round(self.avg_health, 1),
            "avg_health_change": None
            if self.health_change is None
            else round(self.health_change, 1),
            "ltv": d(self.ltv),
            "owner_changes": self.owner_changes,
            "reconciles": self.reconciles(),
        }


@dataclass
class PortfolioReport:
    """Books of a period and their total."""

    period: Period
    by: str
    books: list[Book]
    total: Book
    accounts: list[AccountPeriod]
    ltv_method: str = (
        "ARPA × expected lifetime; ARPA = closing MRR ÷ paying accounts, lifetime = 1 ÷ "
        "monthly logo churn rate of the period"
    )

    def reconciles(self) -> bool:
        return self.total.reconciles() and all(b.reconciles() for b in self.books)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {
                "label": self.period.label,
                "start": self.period.start.isoformat(),
                "end_exclusive": self.period.end.isoformat(),
            },
            "by": self.by,
            "ltv_method": self.ltv_method,
            "books": [b.as_dict() for b in self.books],
            "total": self.total.as_dict(),
        }


# Each query below is one pass over an index (SQLite's bare-column min()/max() gives the
# row of the extreme), joined per account in Python: planner-proof at 100k accounts.
_OPENING = (
    "SELECT account_id, mrr_after, max(day) FROM mrr_movements WHERE day < :start "
    "GROUP BY account_id"
)
_MOVED = """
SELECT account_id,
       total(CASE kind WHEN 'new' THEN amount END),
       total(CASE kind WHEN 'expansion' THEN amount END),
       -total(CASE kind WHEN 'contraction' THEN amount END),
       -total(CASE kind WHEN 'churn' THEN amount END),
       total(CASE kind WHEN 'reactivation' THEN amount END),
       sum(amount)
FROM mrr_movements WHERE day >= :start AND day < :end GROUP BY account_id
"""
_OWNER_BEFORE = (
    "SELECT account_id, json_extract(attrs, '$.to'), max(ts) FROM events "
    "WHERE type = 'owner_changed' AND ts < :start AND account_id IS NOT NULL GROUP BY account_id"
)
_OWNER_AFTER = (
    "SELECT account_id, json_extract(attrs, '$.from'), min(ts) FROM events "
    "WHERE type = 'owner_changed' AND ts >= :start AND account_id IS NOT NULL GROUP BY account_id"
)
# Each subscription's MRR and plan at the start (its last point before), or at its first
# point for subscriptions that start later.
_PLANS = """
SELECT account_id, subscription_id, plan, mrr, max(ts) FROM portfolio_mrr_points
WHERE ts < :start GROUP BY entity, subscription_id
UNION ALL
SELECT account_id, subscription_id, plan, mrr, min(ts) FROM portfolio_mrr_points
WHERE ts >= :start AND ts < :end GROUP BY entity, subscription_id
"""
_HEALTH = """
SELECT a.id, a.name, a.owner_id, a.plan, s.segment,
       (SELECT band || '|' || score FROM health_history
        WHERE account_id = a.id AND day < :end ORDER BY day DESC LIMIT 1),
       (SELECT score FROM health_history
        WHERE account_id = a.id AND day < :start ORDER BY day DESC LIMIT 1)
FROM accounts a LEFT JOIN health_scores s ON s.account_id = a.id
"""


def account_periods(store: Store, period: Period, *, plans: bool = True) -> list[AccountPeriod]:
    """Every account that paid during the period, with its figures (``plans=False`` takes
    the account's current plan instead of its plan at the period start: faster)."""
    build_movements(store)
    db = store.db
    params = {"start": period.start.isoformat(), "end": period.end.isoformat()}
    opening = {aid: mrr for aid, mrr, _ in db.execute(_OPENING, params)}
    moved = {row[0]: row[1:] for row in db.execute(_MOVED, params)}
    members = {aid for aid, mrr in opening.items() if mrr > 0} | set(moved)
    before = {aid: owner for aid, owner, _ in db.execute(_OWNER_BEFORE, params)}
    after = {aid: owner for aid, owner, _ in db.execute(_OWNER_AFTER, params)}
    at_start: dict[str, tuple[int, str]] = {}
    first_in: dict[str, tuple[int, str]] = {}
    for aid, _sub, plan, mrr, ts in db.execute(_PLANS, params) if plans else ():
        target = at_start if ts < params["start"] else first_in
        if mrr > 0 and plan and (aid not in target or mrr > target[aid][0]):
            target[aid] = (mrr, plan)
    info = {row[0]: row[1:] for row in db.execute(_HEALTH, params)}
    out: dict[str, AccountPeriod] = {}
    for aid in sorted(members):
        name, current_owner, fact_plan, segment, end_health, start_score = info.get(
            aid, (None, None, None, None, None, None)
        )
        if aid in before:
            owner = before[aid]
        elif aid in after:
            owner = after[aid]
        else:
            owner = current_owner
        plan = (at_start.get(aid) or first_in.get(aid) or (0, fact_plan))[1]
        new, exp, con, churn, react, net = moved.get(aid, (0, 0, 0, 0, 0, 0))
        band, score_end = None, None
        if end_health:
            band, _, score = end_health.partition("|")
            score_end = float(score) if score else None
        start_mrr = int(opening.get(aid, 0))
        out[aid] = AccountPeriod(
            account_id=aid,
            name=name or aid,
            owner_id=str(owner) if owner not in (None, "") else "",
            segment=segment or "default",
            plan=plan or "(no plan)",
            opening=start_mrr,
            closing=int(start_mrr + net),
            new=int(new),
            expansion=int(exp),
            contraction=int(con),
            churn=int(churn),
            reactivation=int(react),
            band=band or None,
            score_end=score_end,
            score_start=float(start_score) if start_score is not None else None,
        )
    reasons = db.execute(
        "SELECT account_id, coalesce(reason, 'unknown'), -sum(amount) FROM mrr_movements "
        "WHERE kind = 'churn' AND day >= :start AND day < :end GROUP BY 1, 2",
        params,
    )
    for aid, reason, cents in reasons:
        if aid in out:
            out[aid].reasons[reason] = int(cents)
    changes = db.execute(
        "SELECT account_id, ts, json_extract(attrs, '$.from'), json_extract(attrs, '$.to') "
        "FROM events WHERE type = 'owner_changed' AND ts >= :start AND ts < :end "
        "AND account_id IS NOT NULL ORDER BY ts",
        params,
    )
    for aid, ts, old, new_owner in changes:
        if aid in out:
            out[aid].owner_changes.append(
                {
                    "account_id": aid,
                    "name": out[aid].name,
                    "at": ts,
                    "from": old or "",
                    "to": new_owner or "",
                }
            )
    return list(out.values())


def owner_names(store: Store) -> dict[str, str]:
    """Owner id → display name, from accounts and owner-change events."""
    names: dict[str, str] = {}
    for oid, name in store.db.execute(
        "SELECT json_extract(attrs, '$.from'), json_extract(attrs, '$.from_name') FROM events "
        "WHERE type = 'owner_changed' UNION ALL "
        "SELECT json_extract(attrs, '$.to'), json_extract(attrs, '$.to_name') FROM events "
        "WHERE type = 'owner_changed' UNION ALL "
        "SELECT owner_id, coalesce(nullif(owner_name, ''), owner_email) FROM accounts"
    ):
        if oid and name:
            names[str(oid)] = str(name)
    return names


def portfolio_report(
    store: Store, period: Period, by: By = "owner", settings: PortfolioSection | None = None
) -> PortfolioReport:
    """The books of ``period`` grouped ``by`` owner, segment or plan, and their total."""
    settings = settings or PortfolioSection()
    if by not in ("owner", "segment", "plan"):
        raise ValueError(by)
    accounts = account_periods(store, period, plans=by == "plan")
    names = owner_names(store) if by == "owner" else {}

    def new_book(key: str, label: str) -> Book:
        return Book(key, label, months=period.months, ltv_max_months=settings.ltv_max_months)

    books: dict[str, Book] = {}
    total = new_book("*", "Total")
    for a in accounts:
        key = {"owner": a.owner_id, "segment": a.segment, "plan": a.plan}[by]
        if key not in books:
            label = (names.get(key, key) if key else NOBODY) if by == "owner" else key
            books[key] = new_book(key, label)
        books[key].add(a)
    for book in books.values():
        total.merge(book)
    names = names or owner_names(store)
    for book in [*books.values(), total]:
        for change in book.owner_changes:
            change.setdefault("from_name", names.get(change["from"]) or None)
            change.setdefault("to_name", names.get(change["to"]) or None)
    ordered = sorted(books.values(), key=lambda b: (-b.opening, b.label))
    return PortfolioReport(period, by, ordered, total, accounts)


def group_sums(accounts: list[AccountPeriod]) -> dict[str, int]:
    """Plain sums of the per-account figures (what the tests reconcile books against)."""
    sums: dict[str, int] = defaultdict(int)
    for a in accounts:
        for kind in ("opening", "new", "reactivation", "expansion", "contraction", "churn"):
            sums[kind] += getattr(a, kind)
        sums["closing"] += a.closing
    return dict(sums)
