"""webhooks: latency from a sandbox payment failure to the HubSpot property written, with
webhooks and with the scheduled sync, both measured over real processes.

Each side gets a fresh world: the sandbox runs in a child process (``hub sandbox serve
--clock run``), the hub in another, and the benchmark only makes payments fail (``POST
/__sandbox/webhooks/payment_failed``: a healthy customer's card is declined now) and polls
the sandbox's HubSpot company (``GET /crm/v3/objects/companies/<id>``, every 50 ms) until
its ``hub_health_score`` changes.

- **webhooks**: the sandbox sends signed Stripe deliveries itself (``--webhook-url``) to a
  real ``hub serve`` (receivers + worker, ``[webhooks]`` as ``--print-config`` writes it:
  debounce 2 s). Events one after another.
- **scheduled**: no webhooks; ``hub run`` (the scheduler) with every connection on
  ``every 20s`` (the default ``every 30m`` scaled down 90×). Events fire at random moments
  (1–3 s apart, over about three intervals, each on another customer), so each waits for
  the next run like a real change would. The 30-minute row scales the measured *wait* back up: each latency minus
  the median pipeline run (read from the hub's runs), × 90, plus that run again.

Run alone: ``python bench/bench_webhooks.py [--companies 200] [--events 30]``, or through
``bench/bench_web.py --webhooks`` / ``bench/run.py --only webhooks``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))

from common import Options, Section, fmt  # noqa: E402

SCALE = 90  # every 30m → every 20s
TOKEN = "pat-sandbox-hub"


def _hub() -> list[str]:
    exe = Path(sys.executable).with_name("hub")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hub"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(cmd: list[str], pattern: str, log: Path) -> tuple[subprocess.Popen, str]:
    """Start ``cmd``; return it and the first URL printed on a line matching ``pattern``."""
    env = {**os.environ, "COLUMNS": "300", "TERM": "dumb"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    with log.open("a") as out:
        for line in proc.stdout:
            out.write(line)
            if re.search(pattern, line):
                url = re.search(r"http://[0-9.:]+", line)
                if url:
                    # Keep draining the pipe so the child never blocks on a full buffer.
                    threading.Thread(
                        target=_drain, args=(proc, log), daemon=True, name="bench-drain"
                    ).start()
                    return proc, url.group(0)
    raise RuntimeError(f"{cmd[:4]} exited with {proc.wait()} (see {log})")


def _drain(proc: subprocess.Popen, log: Path) -> None:
    assert proc.stdout is not None
    with log.open("a") as out:
        for line in proc.stdout:
            out.write(line)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _config(workdir: Path, sandbox_url: str, schedule: str, webhooks: bool) -> Path:
    from hub.sandbox.config import config_toml
    from hub.sandbox.webhooks import config_lines

    text = config_toml(sandbox_url, []).replace('"every 30m"', f'"{schedule}"')
    text = text.replace('database = "hub.db"', f'database = "{workdir / "hub.db"}"')
    if webhooks:
        text += "\n" + config_lines() + "\n"
    path = workdir / "hub.toml"
    path.write_text(text)
    return path


def _score(client: httpx.Client, hubspot_id: str) -> str | None:
    answer = client.get(
        f"/crm/v3/objects/companies/{hubspot_id}", params={"properties": "hub_health_score"}
    )
    answer.raise_for_status()
    return answer.json()["properties"].get("hub_health_score")


def _fail(client: httpx.Client) -> dict[str, Any]:
    answer = client.post("/__sandbox/webhooks/payment_failed", json={})
    answer.raise_for_status()
    return answer.json()


def _side(
    name: str, workdir: Path, companies: int, seed: int, events: int, timeout: float
) -> dict[str, Any]:
    """One side of the comparison, in fresh processes; returns latencies in seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("hub.db*"):
        old.unlink()
    log = workdir / "processes.log"
    log.write_text("")
    webhooks = name == "webhooks"
    hub_port = _free_port()
    sandbox_cmd = [
        *_hub(),
        "sandbox",
        "serve",
        "--companies",
        str(companies),
        "--seed",
        str(seed),
        "--port",
        "0",
        "--start",
        "now",
        "--clock",
        "run",
    ]
    if webhooks:
        sandbox_cmd += ["--webhook-url", f"http://127.0.0.1:{hub_port}/webhooks"]
    sandbox, sandbox_url = _start(sandbox_cmd, r"Sandbox ready", log)
    hub_proc = None
    try:
        schedule = f"every {30 * 60 // SCALE}s"
        cfg = _config(workdir, sandbox_url, schedule, webhooks)
        started = time.perf_counter()
        subprocess.run(
            [*_hub(), "-c", str(cfg), "run", "--once"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first_sync = time.perf_counter() - started
        if webhooks:
            hub_proc, _ = _start(
                [*_hub(), "-c", str(cfg), "serve", "--port", str(hub_port)], r"hub serve:", log
            )
        else:
            hub_proc = subprocess.Popen(
                [*_hub(), "-c", str(cfg), "run"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(5)  # its first runs (run_on_start) go by before the clock starts
        client = httpx.Client(
            base_url=sandbox_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        latencies: list[float] = []
        missed = 0
        if webhooks:
            for _ in range(events):
                seen = _wait(client, [_fire(client)], timeout)
                latencies += seen
                missed += 1 - len(seen)
        else:
            rng = random.Random(seed)
            waiting: dict[str, tuple[float, str | None]] = {}
            for _ in range(events):
                # Watch the ones already fired while waiting for the next moment to fire.
                pause = time.time() + rng.uniform(1.0, 3.0)
                latencies += _poll(client, waiting, pause, done_when_empty=False)
                hubspot_id, at, score = _fire(client)
                waiting[hubspot_id] = (at, score)
            latencies += _poll(client, waiting, time.time() + timeout + 30 * 60 / SCALE)
            missed += len(waiting)
        sender = client.get("/__sandbox/webhooks").json() if webhooks else {}
        return {
            "latencies": latencies,
            "missed": missed,
            "first_sync_s": first_sync,
            "run_s": _median_run(workdir / "hub.db"),
            "sender": sender,  # the sandbox's figures: attempts, answer times
        }
    finally:
        if hub_proc is not None:
            _stop(hub_proc)
        _stop(sandbox)


def _fire(client: httpx.Client) -> tuple[str, float, str | None]:
    """Fail a payment now: (HubSpot company id, when, its score as of the failure, read at
    once: no run can sync, score and push it within that request)."""
    at = time.time()
    failed = _fail(client)
    return failed["hubspot_id"], at, _score(client, failed["hubspot_id"])


def _wait(
    client: httpx.Client, fired: list[tuple[str, float, str | None]], timeout: float
) -> list[float]:
    """Poll each fired company until its score changes; the seconds each took."""
    waiting = {hubspot_id: (at, score) for hubspot_id, at, score in fired}
    return _poll(client, waiting, time.time() + timeout)


def _poll(
    client: httpx.Client,
    waiting: dict[str, tuple[float, str | None]],
    until: float,
    *,
    done_when_empty: bool = True,
) -> list[float]:
    """Until ``until`` (or, ``done_when_empty``, nothing is left), take from ``waiting``
    (HubSpot id → (fired at, score then)) each company whose score changed; the seconds
    each took."""
    out = []
    while time.time() < until:
        for hubspot_id, (at, score) in list(waiting.items()):
            if _score(client, hubspot_id) != score:
                out.append(time.time() - at)
                del waiting[hubspot_id]
        if not waiting and done_when_empty:
            return out
        time.sleep(0.05)
    return out


def _median_run(db: Path) -> float:
    """The median duration of the hub's pipeline runs after the first (seconds)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT duration_s FROM _hub_runs WHERE kind = 'pipeline' AND duration_s IS NOT NULL "
            "ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    durations = [r[0] for r in rows[1:]] or [r[0] for r in rows] or [0.0]
    return float(statistics.median(durations))


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(opts: Options, *, companies: int | None = None, events: int | None = None) -> Section:
    section = Section("webhooks", "Webhooks: sandbox payment failure → HubSpot property, measured")
    companies = companies or opts.pick(smoke=60, quick=200, full=400)
    events = events or opts.pick(smoke=5, quick=30, full=60)
    results = {
        side: _side(side, opts.workdir / f"webhooks-{side}", companies, opts.seed, events, 15)
        for side in ("webhooks", "scheduled")
    }
    for side, label in (("webhooks", "webhooks (debounce 2 s)"), ("scheduled", None)):
        lat = results[side]["latencies"]
        section.add(
            path=label or f"scheduled every {30 * 60 // SCALE}s (measured)",
            events=len(lat),
            missed=results[side]["missed"],
            median_s=round(statistics.median(lat), 2) if lat else None,
            p95_s=round(_pct(lat, 0.95) or 0, 2) if lat else None,
            max_s=round(max(lat), 2) if lat else None,
        )
    lat, run_s = results["scheduled"]["latencies"], results["scheduled"]["run_s"]
    if lat:
        projected = [max(0.0, x - run_s) * SCALE + run_s for x in lat]
        section.add(
            path="scheduled every 30m (wait above × 90)",
            events=len(lat),
            missed=None,
            median_s=round(statistics.median(projected), 0),
            p95_s=round(_pct(projected, 0.95) or 0, 0),
            max_s=round(max(projected), 0),
        )
    hooks = results["webhooks"]["latencies"]
    if hooks:
        section.goal("webhook latency (p95)", round(_pct(hooks, 0.95) or 0, 2), 10, "<", "s")
    sender = results["webhooks"]["sender"]
    if sender.get("answer_ms_median") is not None:
        section.goal("delivery answered (p95)", sender["answer_ms_p95"], 1000, "<", "ms")
        section.notes.append(
            f"The sandbox sent {sender['attempts']} signed deliveries "
            f"({sender['by_status']}); hub serve answered in median "
            f"{sender['answer_ms_median']} ms, p95 {sender['answer_ms_p95']} ms (stored in "
            "the inbox and committed before answering; Stripe waits up to 20 s, Zendesk 12 s, "
            "HubSpot 5 s)."
        )
    section.notes.append(
        f"{companies} companies; first full sync {results['webhooks']['first_sync_s']:.1f} s; "
        f"median pipeline run on the scheduled side {run_s:.2f} s. "
        + " ".join(__doc__.split("\n\n", 2)[1].split())
    )
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=200)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hub-bench"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    opts = Options(mode="quick", seed=args.seed, workdir=args.workdir)
    print_section(run(opts, companies=args.companies, events=args.events))


def print_section(section: Section) -> None:
    widths = {c: max(len(c), *(len(fmt(r.get(c))) for r in section.rows)) for c in section.columns}
    print(" | ".join(c.ljust(widths[c]) for c in section.columns))
    for row in section.rows:
        print(" | ".join(fmt(row.get(c)).ljust(widths[c]) for c in section.columns))
    for goal in section.goals:
        verdict = "met" if goal.met else "MISSED"
        print(f"goal: {goal.name}: {goal.value} {goal.unit} {goal.op} {goal.target} → {verdict}")
    for note in section.notes:
        print(note)


if __name__ == "__main__":
    main()
