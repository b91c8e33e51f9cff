"""The benchmark harness still runs: ``bench/run.py --smoke`` on tiny sizes, no peers.

Benchmarks are not tests (``python bench/run.py --quick`` prints the figures); this only keeps
the harness from rotting: it runs a few benchmarks end to end against the sandbox (served by a
child process over loopback) and checks the JSON and markdown it writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke(tmp_path):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--only",
            "ingest",
            "noop",
            "--workdir",
            str(tmp_path / "work"),
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out_json.read_text())
    assert data["mode"] == "smoke"
    assert data["machine"]["cpu_count"] >= 1
    sections = {s["name"]: s for s in data["sections"]}
    assert set(sections) == {"ingest", "noop"}
    assert all(s["status"] != "error" for s in sections.values()), sections
    hub_rows = [r for r in sections["ingest"]["rows"] if r["tool"].startswith("hub")]
    assert any(r.get("records") for r in hub_rows), hub_rows
    assert any(r.get("requests") for r in hub_rows), hub_rows
    noop_goals = {g["name"]: g for g in sections["noop"]["goals"]}
    assert noop_goals, sections["noop"]
    markdown = out_md.read_text()
    assert "## Goals" in markdown and "| benchmark | goal |" in markdown
