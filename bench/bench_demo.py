"""demo: wall time of ``hub demo`` as a newcomer runs it (goal: under 30 s on 2 cores).

Runs the real CLI in a subprocess (``hub --db TMP demo``, default world of 500 companies and
4 simulated weeks) and times it from spawn to exit, so interpreter start-up, imports and the
summary count. A profile of the same run in process (``--profile``) shows where the time goes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Options, Section

DONE = re.compile(r"Done in ([\d.]+) s")


def run(opts: Options) -> Section:
    section = Section("demo", "Demo: wall time of `hub demo`")
    companies, weeks = opts.pick(smoke=(30, 1), quick=(500, 4), full=(500, 4))
    hub = Path(sys.executable).with_name("hub")
    base = [str(hub)] if hub.exists() else [sys.executable, "-m", "hub"]
    workdir = opts.workdir / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "demo.db"
        cmd = [*base, "--db", str(db), "demo", "--companies", str(companies), "--weeks", str(weeks)]
        env = {**os.environ, "COLUMNS": "160", "TERM": "dumb"}
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        wall = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    match = DONE.search(output)
    problems = [ln.strip() for ln in output.splitlines() if "problem:" in ln]
    section.add(
        command=f"hub demo --companies {companies} --weeks {weeks}",
        exit_code=proc.returncode,
        wall_s=round(wall, 2),
        reported_s=float(match.group(1)) if match else None,
        problems=len(problems),
        note="; ".join(problems)[:300]
        if problems
        else ("" if proc.returncode == 0 else output.strip().splitlines()[-1][-300:]),
    )
    if proc.returncode == 0:
        section.goal(
            f"hub demo ({companies} companies, {weeks} weeks) wall time",
            round(wall, 1),
            30,
            "<",
            "s",
        )
    else:
        section.status = "error"
    section.notes.append(
        "wall_s: spawn to exit of the CLI; reported_s: the demo's own 'Done in' figure "
        "(after imports). The default `hub demo` is 500 companies and 4 weeks."
    )
    return section
