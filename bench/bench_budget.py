"""budget: how much of each API's request budget the hub sustains, and how many 429s it provokes.

Each case serves a sandbox with ``enforce_limits=True`` and a ``time_scale`` chosen so the
scaled budget is well within what one client can send over loopback (so the figure is the
hub's pacing, not its speed), then syncs the connector with its own budgets scaled by the
same factor (``hubside.connector_for(limits="scaled")``: every ``RateLimit`` window times
``time_scale``). The sandbox scales the windows it enforces and the interval it reports in
rate headers the same way.

Sustained share: the client's transport stamps the time each request goes out. Under "L
requests per W seconds" (a sliding window), a client that uses its budget to the full sends
request i + L exactly W seconds after request i, whatever its burst pattern; so
``sustained = W / mean(t[i + L] - t[i])`` over the requests the budget covers (1.0 = the
budget used to the full; needs at least 2 L requests). Requests and 429s are also counted by
the server.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from common import Options, Section
from hubside import budget_table, connector_class, connector_for
from sandbox_proc import SandboxProcess, status_count, total_requests

SEARCH = re.compile(r"/search$")


class StampingTransport(httpx.HTTPTransport):
    """An ``httpx`` transport that records (send time, method, path) of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append((time.perf_counter(), request.method, request.url.path))
        return super().handle_request(request)


@dataclass
class Case:
    """One budget to measure: which API, the sandbox's budget, the scale, the workload."""

    api: str
    budget: str  # as documented
    limit: int  # L
    window: float  # W, unscaled seconds
    time_scale: float
    covers: Any  # predicate on (method, path): the requests this budget counts
    companies: tuple[int, int, int] = (60, 2500, 10000)  # world per mode: smoke, quick, full
    extra: dict[str, Any] = field(default_factory=dict)  # connector settings for the workload
    search: bool = False  # pre-seed bookmarks so later-run searches do the reading
    why: str = ""


CASES = [
    Case(
        "stripe",
        "25 requests/s",
        25,
        1.0,
        3.0,
        lambda method, path: True,
        companies=(60, 600, 2500),
        why="all streams; 25 per 3 s = 8.3 requests/s, under the sandbox's Stripe serving speed",
    ),
    Case(
        "hubspot",
        "burst 100 per 10 s",
        100,
        10.0,
        0.4,
        lambda method, path: not SEARCH.search(path),
        why="first (list) sync of all streams; 100 per 4 s = 25 requests/s",
    ),
    Case(
        "hubspot",
        "search 5/s",
        5,
        1.0,
        1.0,
        lambda method, path: bool(SEARCH.search(path)),
        search=True,
        why="a later sync (bookmarks preset to 1970) reads everything by search; real time: "
        "scaled to 5 per 0.4 s the client (history batch reads between searches) could not "
        "keep up and the figure measured speed, not pacing",
    ),
    Case(
        "zendesk",
        "incremental exports 10/min",
        10,
        60.0,
        0.05,
        lambda method, path: "/incremental/" in path,
        extra={"per_page": 300},
        why="all streams, per_page=300 (more export pages); 10 per 3 s (at 10 per 1.2 s the "
        "client's page processing, not its pacing, set the pace)",
    ),
]
COLUMNS = [
    "api",
    "budget",
    "time_scale",
    "scaled_budget",
    "requests",
    "windows",
    "seconds",
    "sustained",
    "status_429",
    "retries",
    "note",
]


def _preset_search_bookmarks(store: Any, connector: Any) -> bool:
    """Make the HubSpot CRM streams believe an earlier sync happened in 1970."""
    try:
        from connectors.hubspot.streams import CrmObjectStream, ms_iso
    except ImportError:
        return False
    found = False
    for stream in connector.get_streams():
        if isinstance(stream, CrmObjectStream):
            store.set_state(
                connector.connection, stream.name, {"bookmark": ms_iso(1000), "bookmark_id": -1}
            )
            found = True
    return found


def run_case(case: Case, sp: SandboxProcess, workdir: Path) -> dict[str, Any]:
    """One sync under enforced, scaled budgets; requests and 429s counted by the server."""
    from hub.store import Store
    from hub.sync import sync_connection

    connector = connector_for(
        case.api, sp.url, limits="scaled", time_scale=case.time_scale, extra=case.extra
    )
    db_dir = Path(tempfile.mkdtemp(prefix=f"budget-{case.api}-", dir=workdir))
    store = Store(db_dir / "hub.db")
    try:
        if case.search and not _preset_search_bookmarks(store, connector):
            return {"error": "cannot preset HubSpot bookmarks (connectors.hubspot.streams changed)"}
        time.sleep(case.window * case.time_scale)  # the previous run's window drains first
        sp.reset()
        started = time.perf_counter()
        stamps = StampingTransport()
        results = sync_connection(store, connector, transport=stamps)
        seconds = time.perf_counter() - started
        counts = sp.counts()
    finally:
        store.close()
        shutil.rmtree(db_dir, ignore_errors=True)
    api_counts = counts.get(case.api) or {}
    sent = [t for t, method, path in stamps.sent if case.covers(method, path)]
    covered = len(sent)
    window = case.window * case.time_scale
    errors = [f"{r.stream}: {r.error}" for r in results if r.status == "error"]
    out: dict[str, Any] = {
        "requests": covered,
        "all_requests": api_counts.get("total", 0),
        "seconds": seconds,
        "windows": round(covered / case.limit, 1),
        "status_429": status_count(counts, case.api, 429),
        "records": sum(r.records for r in results),
        "client_retries": sum(r.retries for r in results),
        "error": "; ".join(errors)[:300] or None,
    }
    # A client using its budget to the full sends request i + L exactly W after request i
    # (a sliding window frees a slot when a hit ages out); so the share is W over the
    # average span of L consecutive requests (1.0 = full, < 1 = slower than allowed).
    spans = [b - a for a, b in zip(sent, sent[case.limit :])]
    if len(spans) >= case.limit:
        out["fraction"] = round(window * len(spans) / sum(spans), 3)
    return out


def _record(section: Section, case: Case, out: dict[str, Any]) -> None:
    window = case.window * case.time_scale
    section.add(
        api=case.api,
        budget=case.budget,
        time_scale=case.time_scale,
        scaled_budget=f"{case.limit} per {window:g} s",
        requests=out.get("requests"),
        windows=out.get("windows"),
        seconds=round(out["seconds"], 2) if out.get("seconds") else None,
        sustained=out.get("fraction"),
        status_429=out.get("status_429"),
        retries=out.get("client_retries"),
        note=out.get("error") or case.why,
    )
    if out.get("fraction") is not None:
        section.goal(f"{case.api} {case.budget}: share sustained", out["fraction"], 0.95, ">=")
    elif not out.get("error"):
        section.notes.append(
            f"{case.api} {case.budget}: workload too small to measure a rate "
            f"({out.get('requests')} requests)."
        )
    if out.get("status_429") is not None:
        section.goal(f"{case.api} {case.budget}: 429s provoked", out["status_429"], 0, "==")


def run_shared(section: Section, opts: Options, workdir: Path) -> None:
    """Three processes, three workspaces, one Stripe key: with and without shared budgets.

    Each process is a real ``hub sync`` (its own interpreter and database); the sandbox
    enforces Stripe's 25 requests/s per key in real time and counts the 429s.
    """
    import os
    import subprocess
    import sys

    from hubside import credentials

    companies = opts.pick(smoke=30, quick=150, full=400)
    with SandboxProcess(companies, opts.seed, limits=True) as sp:
        for shared in (True, False):
            case_dir = Path(tempfile.mkdtemp(prefix="shared-", dir=workdir))
            key = credentials("stripe")["api_key"]
            env = {
                **os.environ,
                "HUB_BUDGETS": str(case_dir / "budgets.sqlite") if shared else "off",
            }
            procs = []
            sp.reset()
            started = time.perf_counter()
            for i in range(3):
                toml = case_dir / f"w{i}.toml"
                toml.write_text(
                    f'[hub]\ndatabase = "w{i}.db"\n[connections.stripe]\nconnector = "stripe"\n'
                    f'[connections.stripe.settings]\napi_key = "{key}"\nbase_url = "{sp.url}"\n'
                    "page_size = 25\n"
                )
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "hub", "-c", str(toml), "sync", "--json"],
                        cwd=case_dir,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            for proc in procs:
                proc.wait(timeout=1800)
            seconds = time.perf_counter() - started
            counts = sp.counts()
            shutil.rmtree(case_dir, ignore_errors=True)
            requests = total_requests(counts, "stripe")
            section.add(
                api="stripe",
                budget="25 requests/s, one key, 3 processes",
                requests=requests,
                status_429=status_count(counts, "stripe", 429),
                note=(
                    f"{'shared budgets file' if shared else 'HUB_BUDGETS=off (one budget each)'}: "
                    f"{requests / seconds:.1f} requests/s over {seconds:.1f} s, "
                    f"{companies} companies, real time"
                ),
            )
            if shared:
                section.goal(
                    "three processes on one token: 429s",
                    status_count(counts, "stripe", 429),
                    0,
                    "<=",
                    note="cron + hub sync + hub run on one key",
                )


def run(opts: Options) -> Section:
    section = Section(
        "budget",
        "Budget: share of each API's budget sustained, and 429s provoked",
        columns=list(COLUMNS),
    )
    workdir = opts.workdir / "budget"
    workdir.mkdir(parents=True, exist_ok=True)
    scaled: dict[str, set[str]] = {}
    server: SandboxProcess | None = None
    key: tuple[str, float] | None = None
    try:
        for case in CASES:
            if connector_class(case.api) is None:
                section.add(
                    api=case.api,
                    budget=case.budget,
                    note=f"not available: connector {case.api!r} not installed yet",
                )
                continue
            # Cases of one API and scale share a server (one world build).
            companies = opts.pick(*case.companies)
            if key != (case.api, case.time_scale):
                if server is not None:
                    server.__exit__(None, None, None)
                key = (case.api, case.time_scale)
                server = SandboxProcess(
                    companies, opts.seed, limits=True, time_scale=case.time_scale
                ).__enter__()
            _record(section, case, run_case(case, server, workdir))
            for row in budget_table(case.api, case.time_scale):
                scaled.setdefault(case.api, set()).add(
                    f"{row['budget']} {row['declared']} → {row['scaled']}"
                )
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    section.notes.append(
        "Each API's world is served over loopback by a child process with limits enforced "
        "(companies: "
        + ", ".join(f"{c.api} {opts.pick(*c.companies):,}" for c in CASES)
        + "). How the hub's budgets were scaled (connector RateLimit windows × "
        "time_scale, counts unchanged): "
        + "; ".join(f"{api}: {', '.join(sorted(v))}" for api, v in scaled.items())
        + "."
    )
    run_shared(section, opts, workdir)
    section.notes.append(
        "sustained = W ÷ the mean time between request i and request i + L (send times "
        "stamped by the client's transport); 1.0 = the budget used to the full. "
        "windows = requests / L. requests, retries: the hub's; status_429: the server's count."
    )
    return section
