"""``hub health``: table by band, --json, --band, --explain, --backfill, override."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_health)

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from hub.cli import cli
from hub.store import Store
from tests.test_health import NOW, add_account, add_event, clk, solved  # noqa: F401 (clk)


@pytest.fixture
def dbfile(tmp_path, clk):  # noqa: F811
    path = tmp_path / "hub.db"
    store = Store(path)
    add_account(
        db := store,
        "1",
        name="Good Co",
        nps=10,
        has_payment_method=True,
        widget_present=True,
        competitors=[],
    )
    solved(db, "1", [2, 3])
    add_event(db, "1", "csat_good", 2)
    add_account(
        db,
        "2",
        name="Bad Co",
        nps=2,
        has_payment_method=True,
        widget_present=False,
        competitors=["Intercom"],
    )
    add_event(db, "2", "competitor_detected", 12, technology="Intercom")
    solved(db, "2", [80, 90, 100, 110])
    for days in (3, 9, 20):
        add_event(db, "2", "payment_failed", days)
    add_event(db, "2", "csat_bad", 4)
    store.close()
    return str(path)


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result


def test_table_lists_accounts_by_band_with_trend_and_top_driver(dbfile):
    result = run("--db", dbfile, "health")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Scored 2 accounts (full: first run)" in out
    assert out.index("Bad Co") < out.index("Good Co")  # red first
    assert "red" in out and "green" in out
    assert "–" in out and "→" not in out  # no history yet: no trend, not a flat one
    assert "payment failed on 3 invoices" in out or "median resolution" in out


def test_json_and_band_filter(dbfile):
    result = run("--db", dbfile, "health", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["run"]["accounts"] == 2 and data["run"]["full"] is True
    by_name = {a["name"]: a for a in data["items"]}
    assert by_name["Bad Co"]["band"] == "red" and by_name["Good Co"]["band"] == "green"
    assert by_name["Bad Co"]["drivers"] == [
        "payment failed on 3 invoices in the last 60 days",
        "median resolution 95 h vs 24 h target (4 tickets solved in the last 90 days)",
        "CSAT 0% good (0 good, 1 bad in the last 90 days)",
    ]
    red = json.loads(
        run("--db", dbfile, "health", "--band", "red", "--json", "--no-compute").output
    )
    assert [a["name"] for a in red["items"]] == ["Bad Co"] and red["run"] is None


def test_explain_prints_the_whole_calculation(dbfile):
    run("--db", dbfile, "health")
    result = run("--db", dbfile, "health", "--explain", "Bad Co")
    assert result.exit_code == 0, result.output
    out = result.output
    for words in (
        "Segment default → model default (weighted)",
        "Billing",
        "Technographics",
        "Calculation (lines add up exactly)",
        # Measures with data (weight): billing 25 (20), csat 0 (10), growth 75 (10), nps 13.33
        # (10), support (0 + 0 + 0 + 0 + 2·100) / 6 = 33.33 (15), support_load 100 (10),
        # technographics 10 (10): (500 + 0 + 750 + 133.3 + 499.95 + 1000 + 100) / 85
        # = 2983.25 / 85 = 35.0971… → 35.10 (half up to hundredths) → 35.
        "Σ = 35.10 (unrounded) → score 35 (rounded half up)",
        "band red",
        "  • payment failed on 3 invoices in the last 60 days",
        "technographics: widget_present=False",
    ):
        assert words in out, words
    data = json.loads(run("--db", dbfile, "health", "--explain", "bad-co.example", "--json").output)
    assert data["account"]["name"] == "Bad Co"
    total = sum(Decimal(str(c["amount"])) for c in data["contributions"])
    assert total == Decimal(str(data["score_exact"])) == Decimal("35.10")
    assert data["coverage"] == pytest.approx(85 / 100)
    techno = next(m for m in data["items"] if m["name"] == "technographics")
    assert techno["drivers"] == [
        "our widget not detected on the site",
        "competitor Intercom detected 12 days ago",
    ]


def test_explain_unknown_account_is_one_line_error(dbfile):
    result = run("--db", dbfile, "health", "--explain", "Nobody Inc")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: no account matches 'Nobody Inc' (give an account id, domain or exact name "
        "('hub health --json' lists them))"
    ]


def test_override_command_and_its_errors(dbfile):
    run("--db", dbfile, "health")
    result = run(
        "--db",
        dbfile,
        "health",
        "override",
        "Bad Co",
        "85",
        "--reason",
        "exec sponsor call went well",
        "--until",
        "2026-12-31",
    )
    assert result.exit_code == 0, result.output
    assert "score 85 (green) until 2026-12-31" in result.output
    table = run("--db", dbfile, "health", "--band", "green", "--no-compute", "--json")
    rows = {a["name"]: a for a in json.loads(table.output)["items"]}
    assert (rows["Bad Co"]["score"], rows["Bad Co"]["computed_score"]) == (85, 35)
    text = run("--db", dbfile, "health", "--no-compute").output
    assert "85*" in text and "CSM override in force" in text
    missing = run("--db", dbfile, "health", "override", "Bad Co", "75", "--until", "2026-12-31")
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines() == [
        'Error: an override needs --reason (e.g. --reason "exec sponsor confirmed renewal")'
    ]
    out_of_range = run(
        "--db",
        dbfile,
        "health",
        "override",
        "Bad Co",
        "101",
        "--reason",
        "x",
        "--until",
        "2026-12-31",
    )
    assert out_of_range.exit_code == 2  # click rejects it before the hub does
    cleared = run("--db", dbfile, "health", "override", "Bad Co", "--clear")
    assert cleared.exit_code == 0 and "back to its computed score" in cleared.output


def test_backfill_and_full_flags(dbfile):
    result = run("--db", dbfile, "health", "--backfill", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["run"]["backfilled_days"] == 3
    store = Store(dbfile)
    try:
        # Four days scored (three back, then today); history rows only where a score moved.
        assert store.db.execute("SELECT COUNT(*) FROM health_days").fetchone()[0] == 4
        assert 2 <= store.db.execute("SELECT COUNT(*) FROM health_history").fetchone()[0] <= 8
    finally:
        store.close()
    full = json.loads(run("--db", dbfile, "health", "--full", "--json").output)
    assert full["run"]["full"] is True and full["run"]["reason"] == "requested"


def test_bad_config_is_an_error_even_with_db(dbfile, tmp_path):
    # A typo is never silently ignored (the default model would push other numbers).
    bad = tmp_path / "bad.toml"
    bad.write_text("[health]\nmodle = 'x'\n")
    result = run("-c", str(bad), "--db", dbfile, "health", "--json")
    assert result.exit_code == 1
    assert "health.modle" in result.output
    without_db = run("-c", str(bad), "health")
    assert without_db.exit_code == 1
    assert "unknown key health.modle" in without_db.output
    assert NOW.year == 2026
