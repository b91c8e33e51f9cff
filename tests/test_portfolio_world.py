"""The portfolio on the sandbox world: synced, mapped, then ``hub portfolio`` through the CLI.

Checks what the acceptance asks on a real pipeline: every CSM with paying accounts has a
book with NRR, GRR and churn by reason, the books' totals equal the per-account movements,
today's MRR from the movements equals the billing facts, and a full re-map rebuilds the
movements identically.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub import clock
from hub.cli import cli
from hub.portfolio import build_movements
from hub.sandbox.world import advance, build_sandbox
from hub.store import Store
from hub.timeline import run_mappings
from tests.test_timeline_world import cycle, sandbox_config


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    sandbox = build_sandbox(companies=60, seed=5)
    clock.set_source(sandbox.world.now)
    path = tmp_path_factory.mktemp("pf") / "hub.db"
    store = Store(path)
    config = sandbox_config()
    cycle(store, sandbox, config)
    advance(sandbox, 15)
    cycle(store, sandbox, config)
    yield sandbox, store, config, path
    clock.set_source(None)


@pytest.fixture(autouse=True)
def world_clock(request):
    if "world" in request.fixturenames:
        clock.set_source(request.getfixturevalue("world")[0].world.now)
    yield


def run(path, *args):
    result = CliRunner().invoke(cli, ["--db", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_portfolio_by_owner_lists_every_csm_and_reconciles(world):
    sandbox, store, _, path = world
    data = json.loads(run(path, "portfolio", "--by", "owner", "--period", "last-120d", "--json"))
    books = {b["key"]: b for b in data["items"]}
    # Every owner of an account that paid in the period has a book.
    owners = {
        r[0] or ""
        for r in store.db.execute(
            "SELECT DISTINCT a.owner_id FROM accounts a JOIN mrr_movements m ON m.account_id = a.id"
        )
    }
    assert owners - {""} <= set(books) | {
        c["to"] for b in data["items"] for c in b["owner_changes"]
    }
    for book in data["items"]:
        assert book["nrr_pct"] is not None and book["grr_pct"] is not None, book["label"]
        assert book["grr_pct"] <= 100.0 and book["reconciles"]
        assert isinstance(book["churn_by_reason"], dict)
    total = data["overall"]
    assert total["reconciles"]
    # The total equals the sum of the per-account movements of the period, in cents.
    start, end = data["period"]["start"], data["period"]["end_exclusive"]
    sums = dict(
        store.db.execute(
            "SELECT kind, -total(amount) FROM mrr_movements WHERE day >= ? AND day < ? "
            "AND kind IN ('churn', 'contraction') GROUP BY kind",
            [start, end],
        ).fetchall()
    )
    assert round(total["churn"] * 100) == round(sums.get("churn", 0))
    assert round(total["contraction"] * 100) == round(sums.get("contraction", 0))
    net = store.db.execute(
        "SELECT total(amount) FROM mrr_movements WHERE day >= ? AND day < ?", [start, end]
    ).fetchone()[0]
    assert round((total["closing_mrr"] - total["starting_mrr"]) * 100) == round(net)
    # The world's cancellations carry reasons; the books show them.
    assert total["churn"] > 0 and set(total["churn_by_reason"]) - {"unknown"}
    assert sum(b["starting_mrr"] for b in data["items"]) == pytest.approx(total["starting_mrr"])


def test_mrr_today_equals_the_billing_facts(world):
    _, store, _, _ = world
    build_movements(store)
    facts = dict(store.db.execute("SELECT id, round(coalesce(mrr, 0) * 100) FROM accounts"))
    today = dict(
        store.db.execute(
            "SELECT account_id, mrr_after FROM mrr_movements m WHERE day = "
            "(SELECT max(day) FROM mrr_movements WHERE account_id = m.account_id)"
        )
    )
    wrong = {a: (facts[a], today.get(a, 0)) for a in facts if facts[a] != today.get(a, 0)}
    assert not wrong


def test_world_movements_include_expansion_and_churn(world):
    _, store, _, _ = world
    kinds = {r[0] for r in store.db.execute("SELECT DISTINCT kind FROM mrr_movements")}
    assert {"new", "expansion", "churn"} <= kinds


def test_full_remap_rebuilds_movements_identically(world):
    _, store, config, _ = world
    build_movements(store)
    before = store.db.execute("SELECT * FROM mrr_movements ORDER BY account_id, day").fetchall()
    run_mappings(store, config, full=True)
    assert build_movements(store, force=True).rebuilt
    assert (
        store.db.execute("SELECT * FROM mrr_movements ORDER BY account_id, day").fetchall()
        == before
    )


def test_movements_and_cohorts_commands(world):
    _, store, _, path = world
    aid = store.db.execute(
        "SELECT account_id FROM mrr_movements WHERE kind = 'churn' LIMIT 1"
    ).fetchone()[0]
    out = json.loads(run(path, "portfolio", "movements", aid, "--json"))
    months = out["items"]
    assert months and sum(m["churn"] for m in months) > 0
    assert (
        out["lifetime"]["churned_at"]
        and out["lifetime"]["started"] <= out["lifetime"]["churned_at"]
    )
    assert "Paying since" in run(path, "portfolio", "movements", aid)
    for m in months:  # every month's bridge adds up
        moved = m["new"] + m["expansion"] + m["reactivation"] - m["contraction"] - m["churn"]
        assert m["closing"] - m["opening"] == pytest.approx(moved)
    assert "Cohorts by start month" in run(path, "portfolio", "cohorts")
    per_account = run(path, "portfolio", "cohorts", "--accounts").splitlines()
    assert per_account[0].startswith("account_id,name,start,cohort,first_value_at,ttfv_days")
    assert (
        len(per_account) - 1
        == store.db.execute(
            "SELECT count(DISTINCT account_id) FROM mrr_movements WHERE kind = 'new'"
        ).fetchone()[0]
    )
    assert run(path, "portfolio", "--csv").splitlines()[0].startswith("key,label,accounts")
    assert "Portfolio by plan" in run(path, "portfolio", "--by", "plan", "--period", "2026-11")
    bad = CliRunner().invoke(cli, ["--db", str(path), "portfolio", "--period", "someday"])
    assert bad.exit_code == 1 and "unknown period 'someday'" in bad.output


def test_demo_ends_with_the_nrr_per_csm_table(tmp_path):
    out = CliRunner().invoke(
        cli, ["demo", "--companies", "30", "--weeks", "0", "--db", str(tmp_path / "d.db")]
    )
    assert out.exit_code == 0, out.output
    tail = out.output[out.output.index("Net revenue retention per CSM book") :]
    assert "NRR" in tail and "GRR" in tail and "Total" in tail
    assert tail.strip().splitlines()[-1].startswith("Done in")
