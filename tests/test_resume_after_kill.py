"""A sync killed with SIGKILL between pages resumes with no gap and no duplicate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hub.store import Store
from hub.sync import sync_connection
from tests.plugins.example import TOKEN, ExampleAPI, ExampleConnector

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import sys, time
    from hub.store import Store
    from hub.sync import sync_connection
    from tests.plugins.example import ExampleAPI, ExampleConnector, TOKEN

    def hang_on_third(n, request):
        if n >= 3:
            time.sleep(60)  # the parent kills us here, mid-stream

    api = ExampleAPI(count=35, on_page=hang_on_third)
    store = Store(sys.argv[1])
    sync_connection(store, ExampleConnector({"token": TOKEN}, connection="ex"), transport=api.transport())
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_between_pages_then_resume(tmp_path):
    db = tmp_path / "hub.db"
    Store(db).close()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            store = Store(db)
            state = store.get_state("ex", "items")
            store.close()
            if state and state.get("resume", {}).get("params", {}).get("cursor") == "20":
                break
            assert child.poll() is None, "child exited early"
            time.sleep(0.05)
        else:
            raise AssertionError("child never committed two pages")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()

    store = Store(db)
    assert store.db.execute("SELECT COUNT(*) FROM raw_ex_items").fetchone()[0] == 20
    run = store.runs(kind="sync")[0]
    assert run["status"] == "running"  # the killed run never finished

    api = ExampleAPI(count=35)
    [result] = sync_connection(
        store, ExampleConnector({"token": TOKEN}, connection="ex"), transport=api.transport()
    )
    assert result.status == "ok"
    assert api.requests[0].url.params["cursor"] == "20"
    rows = [r["id"] for r in store.raw_rows("raw_ex_items")]
    assert sorted(map(int, rows)) == list(range(1, 36))
    assert len(rows) == len(set(rows))
    assert result.records == 15
