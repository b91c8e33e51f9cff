"""``hub run`` as a service manager runs it: SIGTERM mid-cycle stops cleanly and says so.

A real subprocess against the sandbox served over loopback, every response slowed so the
first cycle is still syncing when SIGTERM arrives (as ``systemctl stop`` or ``docker stop``
send it).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from hub.sandbox.world import CREDENTIALS, build_sandbox


def _wait_for_a_sync_run(db, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(db, timeout=5)
            try:
                if conn.execute("SELECT count(*) FROM _hub_runs WHERE kind = 'sync'").fetchone()[0]:
                    return
            finally:
                conn.close()
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.1)
    raise AssertionError("the first cycle never started")


def test_sigterm_mid_cycle_stops_cleanly_and_says_the_cycle_was_cut_short(tmp_path):
    sandbox = build_sandbox(companies=10, seed=2)
    sandbox.inject("stripe", "slow", count=-1, params={"delay": 0.3})
    server = sandbox.serve()
    config = tmp_path / "hub.toml"
    config.write_text(
        '[hub]\ndatabase = "hub.db"\n[connections.stripe]\nconnector = "stripe"\n'
        f'[connections.stripe.settings]\napi_key = "env:HUB_RUN_KEY"\nbase_url = "{server.url}"\n'
    )
    config.chmod(0o600)
    env = {**os.environ, "HUB_RUN_KEY": CREDENTIALS["stripe"]["api_key"]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "-c", str(config), "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once the scheduler has started
        assert "1 connections scheduled" in first, first + proc.stderr.read()
        _wait_for_a_sync_run(tmp_path / "hub.db")  # then inside it: each response takes 0.3 s
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    assert proc.returncode == 0, err
    assert "stripe: cycle stopped after" in out and "resumes at the next start" in out, out
    assert out.rstrip().endswith("Stopped cleanly."), out
    assert "Traceback" not in err
