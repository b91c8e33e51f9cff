"""`hub run` against `hub sandbox serve`-style loopback HTTP: keeps running on schedule, picks up
changes made by advancing the sandbox clock, and survives SIGKILL + restart with no duplicate
task and no lost record."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.sandbox.world import CREDENTIALS, advance, build_sandbox
from hub.store import Store

ROOT = Path(__file__).resolve().parent.parent


def write_config(path: Path, url: str) -> None:
    zd = CREDENTIALS["zendesk"]
    path.write_text(
        f"""
[hub]
database = "hub.db"

[connections.hubspot]
connector = "hubspot"
schedule = "every 2s"
[connections.hubspot.settings]
access_token = "{CREDENTIALS["hubspot"]["access_token"]}"
base_url = "{url}"
burst_limit = 250
search_per_second = 10

[connections.stripe]
connector = "stripe"
schedule = "every 2s"
[connections.stripe.settings]
api_key = "{CREDENTIALS["stripe"]["api_key"]}"
base_url = "{url}"
requests_per_second = 100

[connections.zendesk]
connector = "zendesk"
schedule = "every 2s"
[connections.zendesk.settings]
subdomain = "{zd["subdomain"]}"
email = "{zd["email"]}"
api_token = "{zd["api_token"]}"
base_url = "{url}"
incremental_per_minute = 100000
requests_per_minute = 100000

[push.hubspot]
connection = "hubspot"
"""
    )
    os.chmod(path, 0o600)


def count(db: Path, sql: str, params=()) -> int:
    store = Store(db)
    try:
        return store.db.execute(sql, params).fetchone()[0]
    finally:
        store.close()


def wait_for(predicate, timeout: float, what: str, db: Path | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    detail = ""
    if db is not None and db.exists():
        store = Store(db)
        rows = store.db.execute(
            "SELECT kind, connection, stream, status, error FROM _hub_runs ORDER BY id DESC LIMIT 15"
        ).fetchall()
        store.close()
        detail = "; last runs: " + " | ".join(str(r) for r in rows)
    raise AssertionError(f"timed out waiting for {what}{detail}")


def start(cfg: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "-c", str(cfg), "run"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_run_survives_sigkill_without_duplicates_or_loss(tmp_path):
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    sandbox = build_sandbox(companies=40, seed=3, start=today - dt.timedelta(days=1))
    server = sandbox.serve()
    cfg = tmp_path / "hub.toml"
    db = tmp_path / "hub.db"
    write_config(cfg, server.url)
    proc = start(cfg)
    try:
        wait_for(
            lambda: (
                db.exists()
                and count(
                    db,
                    "SELECT COUNT(*) FROM _hub_runs WHERE kind='sync' AND connection='zendesk' AND stream='tickets' AND status='ok'",
                )
                >= 1
                and count(
                    db,
                    "SELECT COUNT(*) FROM _hub_runs WHERE kind='push' AND status IN ('ok','partial')",
                )
                >= 1
            ),
            120,
            "first cycles",
            db,
        )
        tickets_before = count(db, "SELECT COUNT(*) FROM raw_zendesk_tickets")
        tasks_before = count(db, "SELECT COUNT(*) FROM tasks")
        # Upstream changes: the running scheduler picks them up on its own.
        advance(sandbox, 3)
        wait_for(
            lambda: count(db, "SELECT COUNT(*) FROM raw_zendesk_tickets") > tickets_before,
            90,
            "changes after advance",
            db,
        )
        # Kill it hard mid-work, then restart on the same database.
        advance(sandbox, 2)
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        runs_before_restart = count(db, "SELECT MAX(id) FROM _hub_runs")
        proc = start(cfg)
        wait_for(
            lambda: (
                count(
                    db,
                    "SELECT COUNT(*) FROM _hub_runs WHERE kind='pipeline' AND status IN ('ok','partial') AND id > ?",
                    [runs_before_restart],
                )
                >= 3
            ),
            120,
            "cycles after restart",
            db,
        )
        # A second `hub run` on the same database refuses to start.
        second = subprocess.run(
            [sys.executable, "-m", "hub", "-c", str(cfg), "run"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "another hub process" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.stop()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""

    # No task created twice in the CRM, every hub task pushed at most once.
    hubspot = sandbox.api("hubspot")
    bodies = [str(t["properties"].get("hs_task_body") or "") for t in hubspot.objects("tasks")]
    markers = [b.split("hubtask", 1)[1].split()[0] for b in bodies if "hubtask" in b]
    assert len(markers) == len(set(markers))
    store = Store(db)
    pushed = [
        r[0] for r in store.db.execute("SELECT remote_id FROM tasks WHERE remote_id IS NOT NULL")
    ]
    assert len(pushed) == len(set(pushed))
    assert count(db, "SELECT COUNT(*) FROM tasks") >= tasks_before

    # No record lost: the hub's raw data equals a fresh full sync of the same upstream state.
    from hub.config import load_config
    from hub.sync import sync_all

    fresh = Store(tmp_path / "fresh.db")
    sync_all(fresh, load_config(cfg), transport=sandbox.transport())
    for table in (
        "raw_hubspot_companies",
        "raw_hubspot_contacts",
        "raw_stripe_customers",
        "raw_stripe_invoices",
        "raw_zendesk_tickets",
    ):
        mine = {r[0] for r in store.db.execute(f"SELECT id FROM [{table}] WHERE deleted = 0")}
        theirs = {r[0] for r in fresh.db.execute(f"SELECT id FROM [{table}] WHERE deleted = 0")}
        assert mine == theirs, (
            f"{table}: missing {sorted(theirs - mine)[:5]}, extra {sorted(mine - theirs)[:5]}"
        )
