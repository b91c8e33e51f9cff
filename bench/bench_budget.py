"""budget: how much of each API's request budget the hub sustains, and how many 429s it provokes.

Each case serves a sandbox with ``enforce_limits=True`` and a ``time_scale`` chosen so the
scaled budget is well within what one client can send over loopback (so the figure is the
hub's pacing, not its speed), then syncs the connector with its own budgets scaled by the
same factor (``hubside.connector_for(limits="scaled")``: every ``RateLimit`` window times
``time_scale``). The sandbox scales the windows it enforces and the interval it reports in
rate headers the same way.

Sustained fraction: a perfect client under "L requests per W seconds" (sliding window) sends
L at once, then L more every W seconds; after R requests in T seconds it has sent
``R - L`` requests at the full rate, so ``fraction = (R - L) / (T * L / W)``. It needs a
workload of several windows (R ≥ 3 L); the table shows R/L. Requests and 429s are counted by
the server, per budget (the routes each budget covers).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import Options, Section
from hubside import budget_table, connector_class, connector_for
from sandbox_proc import SandboxProcess, status_count

SEARCH = re.compile(r"search", re.I)


@dataclass
class Case:
    """One budget to measure: which API, the sandbox's budget, the scale, the workload."""

    api: str
    budget: str  # as documented
    limit: int  # L
    window: float  # W, unscaled seconds
    time_scale: float
    routes: Any  # predicate on the server's route key ("GET list_objects")
    extra: dict[str, Any] = field(default_factory=dict)  # connector settings for the workload
    search: bool = False  # pre-seed bookmarks so later-run searches do the reading
    why: str = ""


CASES = [
    Case(
        "stripe",
        "25 requests/s",
        25,
        1.0,
        0.5,
        lambda key: True,
        why="all streams; 25 per 0.5 s = 50 requests/s",
    ),
    Case(
        "hubspot",
        "burst 100 per 10 s",
        100,
        10.0,
        0.4,
        lambda key: not SEARCH.search(key),
        why="first (list) sync of all streams; 100 per 4 s = 25 requests/s",
    ),
    Case(
        "hubspot",
        "search 5/s",
        5,
        1.0,
        0.4,
        lambda key: bool(SEARCH.search(key)),
        search=True,
        why="a later sync (bookmarks preset to 1970) reads everything by search; 5 per 0.4 s",
    ),
    Case(
        "zendesk",
        "incremental exports 10/min",
        10,
        60.0,
        0.02,
        lambda key: "incremental" in key,
        extra={"per_page": 300},
        why="all streams, per_page=300 (more export pages); 10 per 1.2 s",
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


def world_size(opts: Options) -> int:
    return opts.pick(smoke=60, quick=2500, full=10000)


def _preset_search_bookmarks(store: Any, connector: Any) -> bool:
    """Make the HubSpot CRM streams believe an earlier sync happened in 1970."""
    try:
        from connectors.hubspot.streams import CrmObjectStream, ms_iso
    except ImportError:
        return False
    found = False
    for stream in connector.get_streams():
        if isinstance(stream, CrmObjectStream):
            store.set_state(connector.connection, stream.name, {"bookmark": ms_iso(1000), "bookmark_id": -1})
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
        results = sync_connection(store, connector)
        seconds = time.perf_counter() - started
        counts = sp.counts()
    finally:
        store.close()
        shutil.rmtree(db_dir, ignore_errors=True)
    api_counts = counts.get(case.api) or {}
    covered = sum(v for k, v in (api_counts.get("requests") or {}).items() if case.routes(k))
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
    if covered >= 2 * case.limit and seconds > 0:
        out["fraction"] = round((covered - case.limit) / (seconds * case.limit / window), 3)
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


def run(opts: Options) -> Section:
    section = Section(
        "budget",
        "Budget: share of each API's budget sustained, and 429s provoked",
        columns=list(COLUMNS),
    )
    companies = world_size(opts)
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
        f"World of {companies:,} companies, served over loopback by a child process with "
        "limits enforced. How the hub's budgets were scaled (connector RateLimit windows × "
        "time_scale, counts unchanged): "
        + "; ".join(f"{api}: {', '.join(sorted(v))}" for api, v in scaled.items())
        + "."
    )
    section.notes.append(
        "sustained = (R − L) / (T × L / W): R requests under the budget in T seconds, L per W "
        "(scaled); 1.0 = the budget used to the full after the first burst. windows = R / L."
    )
    return section
