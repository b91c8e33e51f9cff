"""The hub's own pacing provokes no 429 when the sandbox enforces the real budgets.

HubSpot and Zendesk have their own pacing tests (with scaled windows); here Stripe and
BuiltWith run at real time against the real budgets, with the world large enough that a
client without pacing would exceed them.
"""

from __future__ import annotations

import time

from hub.http.ratelimit import reset_shared_limiters
from hub.sandbox.base import Sandbox
from hub.sandbox.builtwith import BuiltWithAPI
from hub.sandbox.stripe import StripeAPI
from hub.sandbox.world import CREDENTIALS, World
from hub.store import Store
from hub.sync import sync_connection


def make(cls, companies):
    sandbox = Sandbox(World(companies=companies, seed=4), enforce_limits=True)
    api = sandbox.add(cls(sandbox))
    api.seed()
    return sandbox, api


def test_stripe_stays_under_25_per_second(tmp_path):
    from connectors.stripe import StripeConnector

    reset_shared_limiters()
    sandbox, api = make(StripeAPI, 150)
    connector = StripeConnector({"api_key": CREDENTIALS["stripe"]["api_key"]}, connection="stripe")
    started = time.monotonic()
    results = sync_connection(Store(tmp_path / "hub.db"), connector, transport=sandbox.transport())
    elapsed = time.monotonic() - started
    requests = sum(r.requests for r in results)
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert requests > 25, "the world is too small to test pacing"
    assert api.status_counts[429] == 0
    # Paced, not throttled to a crawl (loose: CI machines are busy). A one-second window
    # admits a first burst of 25, then 25 per second.
    assert requests <= 25 * 1.05 * (elapsed + 1) + 1
    assert requests / max(elapsed, 1.0) >= 25 * 0.3 or elapsed < 1.2


def test_builtwith_stays_under_its_budget(tmp_path):
    from connectors.builtwith import BuiltWithConnector

    reset_shared_limiters()
    sandbox, api = make(BuiltWithAPI, 260)
    domains = [c.domain for c in sandbox.world.companies]
    connector = BuiltWithConnector(
        {"api_key": CREDENTIALS["builtwith"]["api_key"], "domains": domains}, connection="bw"
    )
    results = sync_connection(Store(tmp_path / "hub.db"), connector, transport=sandbox.transport())
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert sum(r.requests for r in results) >= 16
    assert api.status_counts[429] == 0


# -- one budget per token across processes ----------------------------------------------------


def _serve_sandbox(tmp_path, *args):
    """``hub sandbox serve`` in a subprocess; returns (process, base URL)."""
    import re
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "sandbox", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 180  # a loaded machine builds the world slowly
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("the sandbox did not start")


# The workspaces' shared budget, well under the served limit (Stripe test mode: 25/s): a
# process descheduled between taking a slot and sending (a loaded 2-core machine) must not
# push a request into the server's next window. Three unshared budgets (30/s) would still
# exceed the server's, so a 429-free run shows the budget is one.
SHARED_PER_SECOND = 10


def _stripe_config(tmp_path, url: str, name: str):
    key = CREDENTIALS["stripe"]["api_key"]
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[hub]\ndatabase = "{name}.db"\n[connections.stripe]\nconnector = "stripe"\n'
        f'[connections.stripe.settings]\napi_key = "{key}"\nbase_url = "{url}"\npage_size = 25\n'
        f"requests_per_second = {SHARED_PER_SECOND}\n"
    )
    return path


def test_three_processes_share_one_budget_per_token(tmp_path):
    """Three workspaces syncing the same Stripe key against ``--limits``: no 429 at all."""
    import os
    import sqlite3
    import subprocess
    import sys

    server, url = _serve_sandbox(tmp_path, "--limits", "--companies", "40", "--seed", "3")
    env = {**os.environ, "HUB_BUDGETS": str(tmp_path / "budgets.sqlite")}
    try:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hub",
                    "-c",
                    str(_stripe_config(tmp_path, url, f"w{i}")),
                    "sync",
                    "--json",
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(3)
        ]
        started = time.monotonic()
        outputs = [p.communicate(timeout=600) for p in procs]
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outputs]
    requests = retries = 0
    for i in range(3):
        db = sqlite3.connect(tmp_path / f"w{i}.db")
        r, t = db.execute("SELECT sum(requests), sum(retries) FROM _hub_runs").fetchone()
        requests, retries = requests + r, retries + t
        db.close()
    assert requests > 60, "too little work to test a shared budget"
    assert 3 * SHARED_PER_SECOND > 25  # unshared, the three would overrun the server
    assert retries == 0  # not one 429 (nor anything else retried)
    # One budget shared, not three: the work took at least its share of time.
    assert requests / elapsed <= SHARED_PER_SECOND * 1.1


def test_a_retry_after_wait_is_shown_and_sigterm_wakes_it(tmp_path):
    """``hub sync`` says what it waits for, and SIGTERM ends the wait at once."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    from hub.sandbox.zendesk import ZendeskAPI

    sandbox = Sandbox(World(companies=5, seed=1))
    api = sandbox.add(ZendeskAPI(sandbox))
    api.seed()
    api.faults.inject("429", count=-1, retry_after=60)
    server = sandbox.serve("127.0.0.1", 0)
    zd = CREDENTIALS["zendesk"]
    toml = tmp_path / "hub.toml"
    toml.write_text(
        '[hub]\ndatabase = "hub.db"\n[connections.zd]\nconnector = "zendesk"\n'
        f'[connections.zd.settings]\nsubdomain = "{zd["subdomain"]}"\nemail = "{zd["email"]}"\n'
        f'api_token = "{zd["api_token"]}"\nbase_url = "{server.url}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "-c", str(toml), "sync"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HUB_BUDGETS": str(tmp_path / "budgets.sqlite")},
    )
    try:
        seen = ""
        deadline = time.monotonic() + 60
        while "waiting 60 s" not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            seen += line
        assert "waiting 60 s (Zendesk Support Retry-After)" in seen, seen[-2000:]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        assert time.monotonic() - sent < 10  # woke, did not sit out the minute
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
        server.server_close()
    db = sqlite3.connect(tmp_path / "hub.db")
    statuses = [r[0] for r in db.execute("SELECT status FROM _hub_runs WHERE kind = 'sync'")]
    db.close()
    assert statuses and statuses[0] == "stopped", statuses
