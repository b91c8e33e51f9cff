"""Portfolio golden tests on hand-made timelines, arithmetic worked in each test.

The timelines are written through the neutral contract the portfolio reads: ``subscription_mrr``
events (one subscription's MRR from that moment on) and ``owner_changed`` events, on accounts.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hub.errors import ConfigError
from hub.portfolio import (
    PortfolioSection,
    account_bridge,
    build_movements,
    cohorts,
    csm_rows,
    parse_period,
    portfolio_report,
    validate_config,
)

Q3 = parse_period("2026-Q3")


class Timeline:
    """Writes accounts and neutral events straight into a store."""

    def __init__(self, store):
        self.store = store
        self.n = 0

    def account(self, aid: str, owner: str = "o1", plan: str = "growth") -> str:
        self.store.db["accounts"].insert(
            {
                "id": aid,
                "name": f"Account {aid}",
                "owner_id": owner,
                "owner_name": owner.upper(),
                "plan": plan,
            },
            pk="id",
        )
        return aid

    def _event(self, aid: str, kind: str, day: str, attrs: dict, source_id: str) -> None:
        self.n += 1
        self.store.db["events"].insert(
            {
                "id": f"test:{kind}:{source_id}:{self.n}",
                "entity": f"test:customer:{aid}",
                "account_id": aid,
                "ts": f"{day}T12:00:00+00:00",
                "source": "test",
                "type": kind,
                "summary": kind,
                "attrs": json.dumps(attrs),
                "mapped_at": f"2026-12-01T00:00:{self.n % 60:02d}+00:00",
            },
            pk="id",
        )

    def mrr(
        self,
        aid: str,
        sub: str,
        day: str,
        dollars: float,
        reason: str | None = None,
        plan: str = "growth",
    ) -> None:
        attrs = {"subscription_id": sub, "mrr": dollars, "plan": plan, "reason": reason}
        self._event(aid, "subscription_mrr", day, attrs, sub)

    def owner(self, aid: str, day: str, before: str, after: str) -> None:
        self._event(aid, "owner_changed", day, {"from": before, "to": after}, aid)

    def health(self, aid: str, day: str, score: int, band: str) -> None:
        self.store.db["health_history"].insert(
            {"account_id": aid, "day": day, "score": score, "band": band, "computed_score": score},
            pk=("account_id", "day"),
        )


@pytest.fixture
def tl(store):
    return Timeline(store)


def _kinds(store, aid):
    build_movements(store)
    return [
        (r[0], r[1], r[2])
        for r in store.db.execute(
            "SELECT day, kind, amount FROM mrr_movements WHERE account_id = ? ORDER BY day", [aid]
        )
    ]


def _book(report, key):
    return next(b for b in report.books if b.key == key)


def test_one_million_book_ending_at_1_2_million_is_120_percent_nrr(store, tl):
    # Ten accounts of $100,000 MRR each at the start of Q3: a $1,000,000 book.
    for i in range(10):
        tl.account(f"a{i}", owner="csm")
        tl.mrr(f"a{i}", f"s{i}", "2026-01-10", 100_000)
    # During Q3 four of them expand by $50,000 each: 4 × 50,000 = $200,000.
    for i in range(4):
        tl.mrr(f"a{i}", f"s{i}", "2026-08-01", 150_000)
    report = portfolio_report(store, Q3)
    book = _book(report, "csm")
    assert book.opening == 1_000_000 * 100  # cents
    assert book.closing == 1_200_000 * 100
    # NRR = (1,000,000 + 200,000 − 0 − 0) ÷ 1,000,000 = 1.20
    assert book.nrr == pytest.approx(1.20)
    assert book.as_dict()["nrr_pct"] == 120.0
    assert book.grr == pytest.approx(1.0)  # nothing lost
    assert report.reconciles()


def test_expansion_10_contraction_5_churn_8_is_97_nrr_and_87_grr(store, tl):
    # Start: A 40,000 + B 30,000 + C 22,000 + D 8,000 = 100,000.
    for aid, start in (("A", 40_000), ("B", 30_000), ("C", 22_000), ("D", 8_000)):
        tl.account(aid, owner="csm")
        tl.mrr(aid, f"s{aid}", "2026-03-01", start)
    tl.mrr("A", "sA", "2026-07-15", 50_000)  # expansion +10,000 = 10 %
    tl.mrr("B", "sB", "2026-08-15", 25_000)  # contraction −5,000 = 5 %
    tl.mrr("D", "sD", "2026-09-15", 0, reason="too_expensive")  # churn −8,000 = 8 %
    book = _book(portfolio_report(store, Q3), "csm")
    assert (book.expansion, book.contraction, book.churn) == (1_000_000, 500_000, 800_000)
    # NRR = (100,000 + 10,000 − 5,000 − 8,000) ÷ 100,000 = 97,000 ÷ 100,000 = 0.97
    assert book.nrr == pytest.approx(0.97)
    # GRR = (100,000 − 5,000 − 8,000) ÷ 100,000 = 87,000 ÷ 100,000 = 0.87
    assert book.grr == pytest.approx(0.87)
    assert book.logos_lost == 1 and book.logo_churn_rate == pytest.approx(1 / 4)
    assert book.churn_by_reason == {"too_expensive": 800_000}
    # closing − opening = 97,000 − 100,000 = −3,000 = +10,000 − 5,000 − 8,000
    assert book.closing - book.opening == -300_000 == book.net


def test_yearly_plan_counts_one_twelfth_per_month(store, tl):
    from mappings.stripe_mrr import subscription_points

    # $1,200 a year, quantity 1: 1,200 ÷ 12 = $100 a month (10,000 cents).
    sub = {
        "status": "active",
        "start_date": 1_767_225_600,  # 2026-01-01
        "items": {
            "data": [
                {
                    "quantity": 1,
                    "price": {
                        "unit_amount": 120_000,
                        "recurring": {"interval": "year", "interval_count": 1},
                    },
                }
            ]
        },
    }
    assert subscription_points(sub, [], now=1_800_000_000) == [(1_767_225_600, 10_000.0)]
    # Three seats of a $2,400 yearly price: 3 × 2,400 ÷ 12 = $600 a month.
    sub["items"]["data"][0].update(
        quantity=3, price={"unit_amount": 240_000, "recurring": {"interval": "year"}}
    )
    assert subscription_points(sub, [], now=1_800_000_000)[0][1] == 60_000.0
    # Through the engine, the yearly account contributes $100 to every month's MRR.
    tl.account("Y")
    tl.mrr("Y", "sy", "2026-01-01", 100.0)
    bridge = account_bridge(store, "Y", until=dt.date(2026, 4, 30))
    assert [(m.month, m.opening, m.closing) for m in bridge] == [
        ("2026-01", 0, 10_000),
        ("2026-02", 10_000, 10_000),
        ("2026-03", 10_000, 10_000),
        ("2026-04", 10_000, 10_000),
    ]
    assert bridge[0].new == 10_000


def test_addon_cancelled_while_main_continues_is_contraction_not_churn(store, tl):
    tl.account("X", owner="csm")
    tl.mrr("X", "main", "2026-02-01", 500)
    tl.mrr("X", "addon", "2026-04-01", 100)  # 500 + 100 = 600
    tl.mrr("X", "addon", "2026-08-10", 0, reason="unused")  # 600 − 100 = 500, main continues
    assert _kinds(store, "X") == [
        ("2026-02-01", "new", 50_000),
        ("2026-04-01", "expansion", 10_000),
        ("2026-08-10", "contraction", -10_000),
    ]
    book = _book(portfolio_report(store, Q3), "csm")
    assert (book.contraction, book.churn, book.logos_lost) == (10_000, 0, 0)
    # NRR = (600 − 100) ÷ 600
    assert book.nrr == pytest.approx(500 / 600)


def test_churned_customer_who_returns_is_reactivation_not_new(store, tl):
    tl.account("R")
    tl.mrr("R", "s1", "2026-01-05", 200)
    tl.mrr("R", "s1", "2026-03-05", 0, reason="budget")
    tl.mrr("R", "s2", "2026-06-20", 250)  # a new subscription, months later
    assert _kinds(store, "R") == [
        ("2026-01-05", "new", 20_000),
        ("2026-03-05", "churn", -20_000),
        ("2026-06-20", "reactivation", 25_000),
    ]
    months = {m.month: m for m in account_bridge(store, "R", until=dt.date(2026, 6, 30))}
    assert months["2026-03"].churn == 20_000 and months["2026-03"].reasons == ["budget"]
    assert "2026-04" not in months  # nothing paid, nothing moved
    assert months["2026-06"].reactivation == 25_000 and months["2026-06"].new == 0


def test_plan_switch_on_one_day_is_one_change_not_churn_and_return(store, tl):
    tl.account("P")
    tl.mrr("P", "old", "2026-01-01", 300)
    tl.mrr("P", "old", "2026-05-01", 0, reason="switched plan")
    tl.mrr("P", "new", "2026-05-01", 450)
    assert _kinds(store, "P")[-1] == ("2026-05-01", "expansion", 15_000)


def test_owner_change_mid_quarter_stays_in_the_starting_owners_book(store, tl):
    tl.account("M", owner="bob")  # the CRM's owner today
    tl.mrr("M", "s", "2026-02-01", 1_000)
    tl.owner("M", "2026-08-15", "alice", "bob")  # mid-Q3: alice → bob
    tl.mrr("M", "s", "2026-09-01", 1_200)  # expansion after the change
    tl.account("N", owner="bob")
    tl.mrr("N", "sn", "2026-02-01", 400)
    report = portfolio_report(store, Q3)
    alice, bob = _book(report, "alice"), _book(report, "bob")
    # M was alice's at July 1: her book is 1,000 → 1,200, NRR 120 %; bob's keeps only N.
    assert (alice.opening, alice.closing, alice.accounts) == (100_000, 120_000, 1)
    assert alice.nrr == pytest.approx(1.2)
    assert (bob.opening, bob.accounts, bob.expansion) == (40_000, 1, 0)
    assert report.total.opening == alice.opening + bob.opening  # counted once
    assert [(c["account_id"], c["at"][:10], c["from"], c["to"]) for c in alice.owner_changes] == [
        ("M", "2026-08-15", "alice", "bob")
    ]
    assert bob.owner_changes == []  # reported once, in the book the account stays in
    # In Q4 the account is bob's.
    q4 = portfolio_report(store, parse_period("2026-Q4"))
    assert {b.key for b in q4.books} == {"bob"}


def test_totals_reconcile_for_every_book_and_the_whole_portfolio(store, tl):
    # A mixed book: new, expansion, contraction, churn, reactivation across three owners.
    plan = [
        ("a", "o1", [("2026-01-01", 100), ("2026-07-02", 150)]),
        ("b", "o1", [("2026-07-03", 80)]),  # new in the period: not in NRR's start
        ("c", "o2", [("2026-02-01", 300), ("2026-08-01", 0)]),
        ("d", "o2", [("2026-01-01", 50), ("2026-03-01", 0), ("2026-09-09", 70)]),
        ("e", "o3", [("2026-03-01", 90), ("2026-07-20", 60), ("2026-11-01", 0)]),
    ]
    for aid, owner, points in plan:
        tl.account(aid, owner=owner)
        for day, dollars in points:
            tl.mrr(aid, f"s{aid}", day, dollars, reason="other" if dollars == 0 else None)
    report = portfolio_report(store, Q3)
    db = store.db
    for book in [*report.books, report.total]:
        assert book.reconciles(), book.key
        members = [a.account_id for a in report.accounts if book.key in ("*", a.owner_id)]
        # Closing computed independently: the last point of each subscription before Oct 1.
        marks = ",".join("?" * len(members))
        closing = db.execute(
            f"SELECT total(mrr) FROM (SELECT mrr, row_number() OVER (PARTITION BY subscription_id "
            f"ORDER BY ts DESC) rn FROM portfolio_mrr_points WHERE ts < '2026-10-01' "
            f"AND account_id IN ({marks})) WHERE rn = 1",
            members,
        ).fetchone()[0]
        assert book.closing == closing
        moved = db.execute(
            f"SELECT total(amount) FROM mrr_movements WHERE day >= '2026-07-01' "
            f"AND day < '2026-10-01' AND account_id IN ({marks})",
            members,
        ).fetchone()[0]
        assert book.closing - book.opening == moved == book.net
    total = report.total
    # Start 100 + 300 + 90 = 490; new 80; reactivation 70; expansion 50; contraction 30; churn 300.
    assert (total.opening, total.new, total.reactivation) == (49_000, 8_000, 7_000)
    assert (total.expansion, total.contraction, total.churn) == (5_000, 3_000, 30_000)
    assert total.closing == 49_000 + 8_000 + 7_000 + 5_000 - 3_000 - 30_000 == 36_000


def test_health_bands_and_average_health_at_period_end(store, tl):
    for aid, start_score, end_score, band in (("h1", 80, 60, "yellow"), ("h2", 40, 30, "red")):
        tl.account(aid, owner="csm")
        tl.mrr(aid, f"s{aid}", "2026-01-01", 100)
        tl.health(aid, "2026-06-30", start_score, "green")
        tl.health(aid, "2026-09-30", end_score, band)
        tl.health(aid, "2026-10-15", 99, "green")  # after the period: ignored
    book = _book(portfolio_report(store, Q3), "csm")
    assert book.bands == {
        "yellow": {"accounts": 1, "mrr": 10_000},
        "red": {"accounts": 1, "mrr": 10_000},
    }
    # Average at the end (60 + 30) ÷ 2 = 45, at the start (80 + 40) ÷ 2 = 60: change −15.
    assert book.avg_health == 45 and book.health_change == -15


def test_ltv_is_arpa_times_expected_lifetime(store, tl):
    for i in range(4):
        tl.account(f"l{i}", owner="csm")
        tl.mrr(f"l{i}", f"s{i}", "2026-01-01", 100)
    tl.mrr("l0", "s0", "2026-08-01", 0, reason="budget")
    book = _book(portfolio_report(store, Q3, settings=PortfolioSection(ltv_max_months=600)), "csm")
    # One of four lost in Q3 (92 days = 92 ÷ (365/12) months): monthly churn 0.25 ÷ 3.0247.
    months = 92 / (365 / 12)
    lifetime = 1 / (0.25 / months)
    # ARPA = 300 ÷ 3 paying = $100 = 10,000 cents.
    assert book.ltv == pytest.approx(10_000 * lifetime)


def test_cohorts_ttfv_and_early_churn(store, tl):
    tl.account("c1")
    tl.mrr("c1", "s1", "2026-03-01", 100)
    tl._event("c1", "widget_detected", "2026-03-11", {}, "w1")  # 10 days to first value
    tl.account("c2")
    tl.mrr("c2", "s2", "2026-03-15", 100)
    tl.mrr("c2", "s2", "2026-05-01", 0, reason="no_value")  # 47 days: early churn
    tl.account("c3")
    tl.mrr("c3", "s3", "2026-04-02", 100)
    tl.mrr("c3", "s3", "2026-08-01", 0, reason="budget")  # 121 days: not early
    tl._event("c3", "widget_detected", "2026-04-06", {}, "w3")  # 4 days
    result = {c.month: c.as_dict() for c in cohorts(store, today=dt.date(2026, 12, 1))}
    march, april = result["2026-03"], result["2026-04"]
    assert (march["accounts"], march["early_churn"], march["early_churn_pct"]) == (2, 1, 50.0)
    assert march["reached_first_value"] == 1 and march["ttfv_median_days"] == 10
    assert (april["early_churn"], april["ttfv_median_days"]) == (0, 4)
    # c3 paid $100 from April 2 to August 1: 121 days = 121 ÷ (365/12) months × $100.
    assert april["observed_value_avg"] == pytest.approx(100 * 121 / (365 / 12), abs=0.01)
    # A configured first-value event other than the default.
    tl._event("c2", "deal_won", "2026-03-20", {}, "d2")
    custom = cohorts(store, PortfolioSection(first_value_event="deal_won"), dt.date(2026, 12, 1))
    assert custom[0].as_dict()["ttfv_median_days"] == 5


def test_rebuild_is_identical_and_extends_with_new_events(store, tl):
    tl.account("i")
    tl.mrr("i", "s", "2026-01-01", 100)
    first = build_movements(store)
    assert first.rebuilt and first.movements == 1
    assert not build_movements(store).rebuilt  # nothing changed: nothing rebuilt
    before = store.db.execute("SELECT * FROM mrr_movements ORDER BY 1, 2").fetchall()
    assert build_movements(store, force=True).rebuilt
    assert store.db.execute("SELECT * FROM mrr_movements ORDER BY 1, 2").fetchall() == before
    tl.mrr("i", "s", "2026-02-01", 130)  # an incremental map adds an event
    assert build_movements(store).movements == 2

    def both_ways():
        build_movements(store)  # incremental
        got = store.db.execute("SELECT * FROM mrr_movements ORDER BY 1, 2").fetchall()
        build_movements(store, force=True)
        assert store.db.execute("SELECT * FROM mrr_movements ORDER BY 1, 2").fetchall() == got
        return got

    tl.account("j")
    tl.mrr("j", "t", "2026-03-01", 50)
    tl.mrr("i", "s", "2026-04-01", 0, reason="budget")
    assert [r[3] for r in both_ways()] == ["new", "expansion", "churn", "new"]
    # A relink (identity moved the customer to account j) recomputes both accounts.
    store.db.execute(
        "UPDATE events SET account_id = 'j', mapped_at = '2026-12-02T00:00:00+00:00' "
        "WHERE entity = 'test:customer:i'"
    )
    assert {r[0] for r in both_ways()} == {"j"}
    # A retracted event elsewhere is noticed too (a full rebuild).
    store.db.execute("DELETE FROM events WHERE ts LIKE '2026-04-01%'")
    assert [r[3] for r in both_ways()] == ["new", "expansion", "expansion"]


def test_periods_and_config(store):
    assert (Q3.start, Q3.end) == (dt.date(2026, 7, 1), dt.date(2026, 10, 1))
    month = parse_period("2026-10")
    assert (month.start, month.end) == (dt.date(2026, 10, 1), dt.date(2026, 11, 1))
    last = parse_period("last-90d", today=dt.date(2026, 12, 5))
    assert (last.start, last.end, last.days) == (dt.date(2026, 9, 7), dt.date(2026, 12, 6), 90)
    with pytest.raises(ConfigError, match="unknown period 'Q3'"):
        parse_period("Q3")
    assert validate_config({}).first_value_event == "widget_detected"
    assert validate_config({"portfolio": {"early_churn_days": 30}}).early_churn_days == 30
    with pytest.raises(ConfigError, match="unknown key portfolio.first_value"):
        validate_config({"portfolio": {"first_value": "x"}})
    with pytest.raises(ConfigError, match="portfolio.default_period"):
        validate_config({"portfolio": {"default_period": "soon"}})


def test_portfolio_section_is_checked_when_the_config_loads(tmp_path):
    from hub.config import load_config

    path = tmp_path / "hub.toml"
    path.write_text("[portfolio]\nearly_churn_days = 30\n")
    assert validate_config(load_config(path)).early_churn_days == 30
    path.write_text('[portfolio]\nfirst_value_evnt = "deal_won"\n')
    with pytest.raises(ConfigError, match="unknown key portfolio.first_value_evnt"):
        load_config(path)


def test_csm_rows_for_the_demo(store, tl):
    tl.account("z", owner="o9")
    tl.mrr("z", "s", "2026-01-01", 100)
    tl.mrr("z", "s", "2026-08-01", 0, reason="budget")
    rows = csm_rows(store, period="2026-Q3")
    assert rows[0]["owner"] == "O9" and rows[0]["nrr_pct"] == 0.0
    assert rows[0]["top_churn_reason"] == "budget" and rows[-1]["owner"] == "Total"
