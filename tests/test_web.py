"""``hub serve`` in process: pages, 404s, filters and exports, safety rules, the schema."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import warnings

import pytest
from click.testing import CliRunner

with warnings.catch_warnings():
    # Starlette suggests a renamed httpx fork for its test client; plain httpx still works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from hub.errors import ConfigError
from hub.store import Store
from hub.store.web import ReadOnlyStore
from hub.store.web_admin import datasette_metadata
from hub.web import WebOptions, check_bind, create_app
from tests.web_support import demo_database

PAGES = ["/", "/accounts", "/portfolio", "/identity", "/runs", "/settings"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(demo_database(tmp_path_factory, tmp_path_factory.mktemp("web") / "hub.db"))


def client(db_path: str, **options) -> TestClient:
    return TestClient(
        create_app(WebOptions(db_path=db_path, **options)), base_url="http://127.0.0.1"
    )


@pytest.fixture(scope="module")
def web(db):
    with client(db) as c:
        yield c


def first_account(db_path: str, where: str = "1=1") -> str:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(
            f"SELECT a.id FROM accounts a JOIN health_scores h ON h.account_id = a.id WHERE {where} "
            "ORDER BY a.id LIMIT 1"
        ).fetchone()[0]
    finally:
        conn.close()


def test_every_page_answers(web, db):
    account = first_account(db)
    for path in [*PAGES, f"/accounts/{account}", f"/accounts/{account}/explain", "/runs/1"]:
        response = web.get(path)
        assert response.status_code == 200, path
        assert "Traceback" not in response.text
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "Content-Security-Policy" not in web.get("/static/hub.css").text


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/no-such-account",
        "/accounts/%00%27%22",
        "/accounts/no-such-account/explain",
        "/runs/999999",
        "/runs/abc",
        "/nowhere",
        "/accounts?page=9999",
    ],
)
def test_missing_or_malformed_ids_are_404_pages(web, path):
    response = web.get(path)
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text
    assert "Traceback" not in response.text


def test_malformed_filters_fall_back(web):
    for query in ("page=abc", "sort=drop%20table", "coverage=%3Cx%3E", "dir=sideways"):
        assert web.get(f"/accounts?{query}").status_code == 200


def test_account_page_shows_explain_timeline_tasks_links(web, db):
    from hub.health import explain

    account = first_account(db, "h.band = 'red'")
    page = web.get(f"/accounts/{account}").text
    store = ReadOnlyStore(db)
    try:
        expected = explain(store, account)
    finally:
        store.close()
    for measure in expected["measures"]:
        assert measure["label"] in page
    assert f"score {expected['score']}" in page
    assert 'id="timeline"' in page and 'id="links"' in page
    assert "root" in page  # the CRM company's own link, with how it was made
    assert "<svg" in page and "Health score over time" in page
    stripe_only = web.get(f"/accounts/{account}?source=stripe").text
    rows = re.findall(r'<tr class="pol-[a-z]+"><td class="nowrap">.*?</tr>', stripe_only, re.S)
    assert rows and all("Stripe" in r for r in rows)


def test_accounts_filters_sort_page_and_exports(web, db):
    red = web.get("/accounts.json?band=red").json()
    assert red["count"] > 0 and {a["band"] for a in red["accounts"]} == {"red"}
    ranked = web.get("/accounts.json?sort=score&dir=desc").json()["accounts"]
    scores = [a["score"] for a in ranked if a["score"] is not None]
    assert scores == sorted(scores, reverse=True)
    one = ranked[0]
    found = web.get("/accounts.json", params={"q": one["domain"]}).json()["accounts"]
    assert one["id"] in [a["id"] for a in found]
    table = list(csv.DictReader(io.StringIO(web.get("/accounts.csv?band=red").text)))
    assert [r["id"] for r in table] == [a["id"] for a in red["accounts"]]
    everyone = web.get("/accounts.json").json()["count"]
    page2 = web.get("/accounts?page=2").text if everyone > 50 else ""
    assert everyone > 0 and (everyone <= 50 or "page 2 of" in page2)
    owner = web.get("/accounts.json").json()["accounts"][0]
    html = web.get("/accounts", params={"band": "red", "coverage": "full"}).text
    assert "Accounts" in html and owner


def test_remote_text_is_escaped(tmp_path_factory):
    path = str(demo_database(tmp_path_factory, tmp_path_factory.mktemp("esc") / "hub.db"))
    account = first_account(path)
    store = Store(path)
    store.db.execute(
        "UPDATE accounts SET name = ? WHERE id = ?", ["<script>alert(1)</script>", account]
    )
    store.db.conn.commit()
    store.close()
    with client(path) as c:
        for page in (f"/accounts/{account}", "/accounts"):
            text = c.get(page).text
            assert "<script>alert(1)" not in text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_settings_never_render_secrets(db, monkeypatch):
    from hub.config import parse_config

    monkeypatch.setenv("HUB_TEST_TOKEN", "tok_env_secret_value_123")
    config = parse_config(
        {
            "connections": {
                "crm": {
                    "connector": "hubspot",
                    "settings": {"access_token": "pat-literal-9f8e7d6c"},
                },
                "billing": {"connector": "stripe", "settings": {"api_key": "env:HUB_TEST_TOKEN"}},
            }
        }
    )
    with client(db, config=config) as c:
        text = c.get("/settings").text
    assert "pat-literal-9f8e7d6c" not in text and "tok_env_secret_value_123" not in text
    assert "env:HUB_TEST_TOKEN" in text and "••••" in text


def _csrf(text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


def test_actions_need_allow_actions_and_csrf(tmp_path_factory):
    path = str(demo_database(tmp_path_factory, tmp_path_factory.mktemp("act") / "hub.db"))
    store = ReadOnlyStore(path)
    issue = store.db.execute(
        "SELECT entity FROM identity_issues WHERE issue = 'unmatched' LIMIT 1"
    ).fetchone()[0]
    store.close()
    account = first_account(path)
    form = {"entity": issue, "account_id": account}
    with client(path) as c:
        refused = c.post("/identity/link", data=form)
        assert refused.status_code == 403 and "--allow-actions" in refused.text
        assert "csrf_token" not in c.get("/identity").text
    with client(path, allow_actions=True) as c:
        token = _csrf(c.get("/identity").text)
        assert c.post("/identity/link", data=form).status_code == 403
        assert c.post("/identity/link", data={**form, "csrf_token": "x" * 43}).status_code == 403
        foreign = c.post(
            "/identity/link",
            data={**form, "csrf_token": token},
            headers={"origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        missing = c.post("/identity/link", data={**form, "account_id": "nope", "csrf_token": token})
        assert missing.status_code == 404
        done = c.post("/identity/link", data={**form, "csrf_token": token}, follow_redirects=False)
        assert done.status_code == 303
        assert "Link recorded" in c.get(done.headers["location"]).text
    check = sqlite3.connect(path)
    assert check.execute(
        "SELECT account_id FROM identity_overrides WHERE key = ?", [issue]
    ).fetchone() == (account,)


def test_identity_link_and_unlink_apply_at_next_map(tmp_path_factory):
    from hub.store.web_admin import set_identity_override
    from hub.timeline import run_mappings

    path = str(demo_database(tmp_path_factory, tmp_path_factory.mktemp("link") / "hub.db"))
    store = Store(path)
    try:
        issue = store.db.execute(
            "SELECT entity FROM identity_issues WHERE issue = 'unmatched' LIMIT 1"
        ).fetchone()[0]
        account = first_account(path)
        linked = store.db.execute(
            "SELECT entity FROM account_links WHERE method = 'domain' LIMIT 1"
        ).fetchone()[0]
        set_identity_override(store, issue, account)
        set_identity_override(store, linked, None)
        run_mappings(store)
        row = store.db.execute(
            "SELECT account_id, method, detail FROM account_links WHERE entity = ?", [issue]
        ).fetchone()
        assert row == (account, "override", "linked by hand on the identity page")
        assert (
            store.db.execute("SELECT 1 FROM account_links WHERE entity = ?", [linked]).fetchone()
            is None
        )
        assert store.db.execute(
            "SELECT issue FROM identity_issues WHERE entity = ?", [linked]
        ).fetchone() == ("unlinked",)
    finally:
        store.close()
    with client(path) as c:
        assert "linked by hand on the identity page" in c.get(f"/accounts/{account}").text


def test_token_and_host_checks(db):
    with client(db, token="s3cret-token-value", host="0.0.0.0") as c:
        assert c.get("/").status_code == 401
        assert c.get("/", headers={"authorization": "Bearer s3cret-token-value"}).status_code == 200
        swap = c.get("/accounts?token=s3cret-token-value&band=red", follow_redirects=False)
        assert swap.status_code == 303 and swap.headers["location"] == "/accounts?band=red"
        assert (
            "hub_token" in swap.headers["set-cookie"] and "HttpOnly" in swap.headers["set-cookie"]
        )
        assert c.get("/accounts?band=red").status_code == 200  # the cookie now
        assert "s3cret-token-value" not in c.get("/settings").text
    with client(db) as c:
        assert c.get("/", headers={"host": "attacker.example"}).status_code == 421
        assert c.get("/", headers={"host": "localhost:8321"}).status_code == 200


def test_bind_beyond_loopback_needs_a_token(db, monkeypatch):
    with pytest.raises(ConfigError):
        check_bind("0.0.0.0", None)
    check_bind("127.0.0.2", None)
    check_bind("::1", None)
    check_bind("192.0.2.1", "token")
    from hub.cli import cli

    result = CliRunner().invoke(cli, ["--db", db, "serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 1 and "--token env:HUB_WEB_TOKEN" in result.output
    monkeypatch.delenv("HUB_WEB_TOKEN", raising=False)
    result = CliRunner().invoke(
        cli, ["--db", db, "serve", "--host", "0.0.0.0", "--token", "env:HUB_WEB_TOKEN"]
    )
    assert result.exit_code == 1 and "HUB_WEB_TOKEN which is not set" in result.output
    result = CliRunner().invoke(cli, ["--db", db, "serve", "--token", "plain-token"])
    assert result.exit_code == 1 and "reference" in result.output


def test_browsable_schema_and_datasette_metadata(db):
    conn = sqlite3.connect(db)
    try:
        for table in ("events", "health_scores", "tasks", "account_links"):
            fks = conn.execute(f"PRAGMA foreign_key_list({table})").fetchall()
            assert [(fk[2], fk[3], fk[4]) for fk in fks] == [("accounts", "account_id", "id")]
        views = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='view'")}
        assert {"account_health", "open_tasks", "timeline"} <= views
        assert (
            conn.execute("SELECT COUNT(*) FROM timeline").fetchone()[0]
            == conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        )
        red = conn.execute("SELECT COUNT(*) FROM account_health WHERE band = 'red'").fetchone()[0]
        assert (
            red == conn.execute("SELECT COUNT(*) FROM health_scores WHERE band='red'").fetchone()[0]
        )
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    store = ReadOnlyStore(db)
    try:
        meta = datasette_metadata(store)
    finally:
        store.close()
    tables = next(iter(meta["databases"].values()))["tables"]
    assert tables["_hub_runs"] == {"hidden": True} and tables["raw_stripe_customers"]["hidden"]
    assert tables["accounts"]["label_column"] == "name" and tables["events"]["title"] == "Events"
    assert "timeline" in tables


def test_fk_migration_keeps_rows(tmp_path):
    from sqlite_utils import Database

    from hub.store import migrations

    db = Database(tmp_path / "old.db")
    migrations.migrations.apply(db, stop_before="web_browsable_schema")
    db["accounts"].insert({"id": "1", "name": "Acme"})
    db["events"].insert({"id": "e1", "account_id": "1", "ts": "2026-01-01T00:00:00Z", "type": "x"})
    db["tasks"].insert({"id": "t1", "account_id": "1", "status": "open", "subject": "call"})
    db.close()
    store = Store(tmp_path / "old.db")
    try:
        assert store.db.execute("SELECT account FROM open_tasks").fetchall() == [("Acme",)]
        assert store.db.execute("SELECT account, type FROM timeline").fetchall() == [("Acme", "x")]
        assert [i.columns for i in store.db["events"].indexes if not i.name.startswith("sqlite")]
    finally:
        store.close()


def test_run_now_syncs_one_connection(tmp_path):
    import time

    from hub.demo import demo_config
    from hub.sandbox.world import build_sandbox

    path = str(tmp_path / "hub.db")
    Store(path).close()
    sandbox = build_sandbox(companies=15, seed=2)
    config = demo_config(path)
    with client(path, config=config, allow_actions=True, transport=sandbox.transport()) as c:
        page = c.get("/runs").text
        assert 'action="/runs/now"' in page
        form = {"connection": "zendesk", "csrf_token": _csrf(page)}
        assert c.post("/runs/now", data={**form, "connection": "nope"}).status_code == 404
        done = c.post("/runs/now", data=form, follow_redirects=False)
        assert done.status_code == 303 and "msg=started" in done.headers["location"]
        state = c.app.state.web
        deadline = time.time() + 30
        while state.running and time.time() < deadline:
            time.sleep(0.1)
        assert not state.running
        runs = c.get("/runs?connection=zendesk").text
        assert "tickets" in runs and "status-error" not in runs
    check = sqlite3.connect(path)
    synced = {
        r[0] for r in check.execute("SELECT DISTINCT connection FROM _hub_runs WHERE kind='sync'")
    }
    assert synced == {"zendesk"}
    assert check.execute("SELECT COUNT(*) FROM _hub_lock").fetchone()[0] == 0


def test_portfolio_shows_retention_per_book(web, db):
    from hub.portfolio import csm_rows

    store = Store(db)
    try:
        total = csm_rows(store)[-1]
    finally:
        store.close()
    page = web.get("/portfolio").text
    assert "Retention per book" in page and "Net and gross revenue retention" in page
    if total["nrr_pct"] is not None:
        assert f"{total['nrr_pct']:g}%" in page
    bad = web.get("/portfolio?period=someday")
    assert bad.status_code == 200 and "someday" in bad.text and "Retention per book" not in bad.text


def test_datasette_option_writes_metadata(db, tmp_path, monkeypatch):
    import json

    from hub.cli import cli

    monkeypatch.setenv("PATH", str(tmp_path))  # no datasette on PATH: write and explain
    target = tmp_path / "meta.json"
    result = CliRunner().invoke(cli, ["--db", db, "serve", "--datasette", str(target)])
    assert result.exit_code == 0, result.output
    meta = json.loads(target.read_text())
    tables = next(iter(meta["databases"].values()))["tables"]
    assert tables["_hub_runs"]["hidden"] and tables["accounts"]["title"] == "Accounts"
    assert "pip install datasette" in result.output


def test_run_errors_pass_through_the_redactor(tmp_path_factory, monkeypatch):
    from hub import logs

    path = str(demo_database(tmp_path_factory, tmp_path_factory.mktemp("redact") / "hub.db"))
    monkeypatch.setattr(logs, "_secrets", list(logs._secrets))
    logs.register_secret("sk_live_canary_987654321")
    store = Store(path)
    run_id = store.start_run("sync", "stripe", "customers")
    store.finish_run(run_id, status="error", error="401 for key sk_live_canary_987654321")
    store.close()
    with client(path) as c:
        for page in ("/runs", f"/runs/{run_id}", "/"):
            text = c.get(page).text
            assert "sk_live_canary_987654321" not in text and "401 for key" in text


def test_pages_do_not_wait_for_a_writer(web, db):
    import time

    writer = sqlite3.connect(db, timeout=1)
    try:
        writer.execute("BEGIN IMMEDIATE")  # as hub run does while it writes a page of records
        writer.execute("UPDATE _hub_seq SET value = value WHERE name = 'raw'")
        account = first_account(db)
        started = time.perf_counter()
        for path in ["/", "/accounts", f"/accounts/{account}", "/portfolio", "/identity", "/runs"]:
            assert web.get(path).status_code == 200
        assert time.perf_counter() - started < 10
    finally:
        writer.rollback()
        writer.close()


def test_overview_movers_say_what_moved_them_as_the_demo_does(web, db):
    """The week's movers are explained by what moved the score (``biggest_movers``), never by
    a measure that only gained or lost data."""
    from html import unescape

    from hub.health import biggest_movers

    store = ReadOnlyStore(db)
    try:
        movers = [m for m in biggest_movers(store, 7, falls=8, climbs=4) if m.reasons]
    finally:
        store.close()
    page = unescape(web.get("/").text)
    assert movers, "the demo database has movers with measure moves"
    shown = [m for m in movers if m.name and m.name in page]
    assert shown
    for m in shown:
        assert "; ".join(m.reasons[:3]) in page, m.name
    assert "no data →" not in page and "→ no data" not in page
