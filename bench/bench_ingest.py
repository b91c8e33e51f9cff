"""ingest: records/s and requests per record, the hub against its peers on the same server.

The sandbox is served by a child process (``bench/sandbox_proc.py``: its own interpreter, so
the server does not share a GIL with the client measured) with rate limits off. On the same
server and data, per endpoint:

- the official SDK's auto-paging (the floor, and the baseline of the ratio column);
- the hub: ``hub.sync.sync_connection`` for that one stream, the connector pointed at the
  server via ``base_url``, proactive limiter off, into a fresh SQLite file;
- dlt's ``rest_api`` source into DuckDB; the Singer tap (see ``bench/peers``).

Then each hub connector syncs all its streams (records/s per connector). Requests are counted
by the server (``FakeAPI.requests``), the same way for every tool. Every tool's time covers its
own listing and storing (the SDK only lists), not interpreter start-up.

The first sync of a whole workspace (connections in parallel vs each alone) is its own
benchmark: ``bench/bench_workspace.py`` (``--only workspace``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCH_DIR, NOT_AVAILABLE, Options, Section, rate, ratio
from hubside import CONNECTORS, connector_class, connector_for
from sandbox_proc import SandboxProcess, total_requests

# (source, stream): the endpoints the peers can read too. Stripe customers are paged by
# ``starting_after``, HubSpot companies and contacts by ``paging.next.after``.
ENDPOINTS = [
    ("stripe", "customers", "/v1/customers"),
    ("hubspot", "companies", "/crm/v3/objects/companies"),
    ("hubspot", "contacts", "/crm/v3/objects/contacts"),
]
PEERS_FOR = {
    ("stripe", "customers"): ["sdk-stripe", "dlt-stripe", "singer-stripe"],
    ("hubspot", "companies"): [
        "sdk-hubspot",
        "dlt-hubspot",
        "singer-meltano-companies",
        "singer-hubspot-companies",
    ],
    ("hubspot", "contacts"): ["sdk-hubspot-contacts", "singer-hubspot"],
}
TOOL_NAMES = {
    "sdk": "official SDK (auto-paging)",
    "dlt": "dlt rest_api → duckdb",
    "singer": "Singer tap → file",
    "hub": "hub sync → SQLite",
}


def world_size(opts: Options) -> int:
    # Companies; each has ~7 HubSpot records, ~20 Stripe objects, ~8 Zendesk records.
    return opts.pick(smoke=60, quick=1500, full=10000)


def builtwith_domains(companies: int, seed: int) -> list[str]:
    from hub.sandbox.base import FREEMAIL_DOMAINS
    from hub.sandbox.world import World

    world = World(companies=companies, seed=seed)
    return sorted({c.domain for c in world.companies if c.domain not in FREEMAIL_DOMAINS})


def run_hub(
    sp: SandboxProcess,
    name: str,
    workdir: Path,
    streams: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One hub sync of ``name`` (all or some streams) into a fresh database."""
    from hub.store import Store
    from hub.sync import sync_connection

    connector = connector_for(name, sp.url, limits="off", extra=extra)
    if streams:
        known = {s.name for s in connector.get_streams()}
        if not set(streams) <= known:
            return {
                "error": f"connector has no stream {streams[0]!r} (has {', '.join(sorted(known))})"
            }
    db_dir = Path(tempfile.mkdtemp(prefix=f"ingest-{name}-", dir=workdir))
    store = Store(db_dir / "hub.db")
    floors: dict[str, int] = {}
    try:
        sp.reset()
        cpu = time.process_time()
        started = time.perf_counter()
        results = sync_connection(store, connector, streams=streams)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        counts = sp.counts()
        if name == "hubspot":
            history = bool((extra or {}).get("company_history", True))
            floors = {r.stream: hubspot_floor(store, name, r.stream, history) for r in results}
    finally:
        store.close()
        shutil.rmtree(db_dir, ignore_errors=True)
    errors = [f"{r.stream}: {r.error}" for r in results if r.status == "error"]
    return {
        "records": sum(r.records for r in results),
        "seconds": seconds,
        "cpu_s": cpu,
        "requests": total_requests(counts, name),
        "client_requests": sum(r.requests for r in results),
        "streams": {r.stream: r.records for r in results},
        "per_stream": {r.stream: (r.requests, floors.get(r.stream)) for r in results},
        "error": "; ".join(errors)[:300] or None,
    }


HUBSPOT_LINKED = {"deals", "tasks", "calls", "emails", "meetings", "notes"}


def hubspot_floor(store: Any, connection: str, stream: str, company_history: bool) -> int:
    """The fewest requests HubSpot allows for a first read of what ``stream`` stored: live
    records 100 per list page (companies with history 50), the archived list (at least one
    page), company links 1,000 per v4 batch read, opted-out contacts' history 50 per batch read.
    Merge tombstones cost nothing (the survivor names them)."""
    from hub.store import raw_table_name

    live = archived = opted = 0
    for row in store.raw_rows(raw_table_name(connection, stream)):
        data = row["data"] if isinstance(row["data"], dict) else {}
        if not row["deleted"]:
            live += 1
            props = data.get("properties") or {}
            opted += str(props.get("hs_email_optout") or "").lower() == "true"
        elif not data.get("merged_into"):
            archived += 1
    if stream == "owners":
        return max(1, -(-live // 100))
    page = 50 if stream == "companies" and company_history else 100
    floor = max(1, -(-live // page)) + max(1, -(-archived // 100))
    if stream in HUBSPOT_LINKED:
        floor += -(-live // 1000)
    if stream == "contacts":
        floor += -(-opted // 50)
    return floor


def run_peer(
    sp: SandboxProcess, peer: str, api: str, workdir: Path, opts: Options
) -> dict[str, Any]:
    """One peer in its own process; requests counted by the server."""
    if peer.startswith("singer-"):
        return _run_singer(sp, peer, api, workdir, opts)
    runner = [
        sys.executable,
        str(BENCH_DIR / "peers" / "run_peer.py"),
        peer,
        sp.url,
        str(workdir / peer),
    ]
    sp.reset()
    proc = subprocess.run(runner, capture_output=True, text=True, timeout=1800)
    counts = sp.counts()
    if proc.returncode:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or ["failed"]
        return {"error": tail[0][-240:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["requests"] = total_requests(counts, api)
    return out


def _run_singer(
    sp: SandboxProcess, peer: str, api: str, workdir: Path, opts: Options
) -> dict[str, Any]:
    from peers.singer_taps import SingerUnavailable, run_tap

    tap, stream = {
        "singer-stripe": ("tap-stripe", "customers"),
        "singer-hubspot": ("tap-hubspot", "contacts"),
        "singer-hubspot-companies": ("tap-hubspot", "companies"),
        "singer-meltano-companies": ("meltano-tap-hubspot", "companies"),
    }[peer]
    try:
        # Everything the world has: customers go back two years before the world's start.
        sp.reset()
        out = run_tap(tap, sp.url, opts.workdir, "2024-06-01T00:00:00Z", 1800, streams=[stream])
    except SingerUnavailable as exc:
        return {"error": str(exc), "unavailable": True}
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    out["requests"] = total_requests(sp.counts(), api)
    out["note"] = f"{tap} {out.pop('version', '?')}, base URL rebound by a shim (no setting)"
    out["tap"] = tap
    return out


def _row(
    section: Section, source: str, stream: str, tool: str, out: dict[str, Any], base: float | None
):
    records, seconds, requests = out.get("records"), out.get("seconds"), out.get("requests")
    rps = rate(records, seconds) if records and seconds else None
    note = out.get("error") or out.get("note") or ""
    if out.get("extract_s") is not None:
        note = (note + "; " if note else "") + f"extract alone {out['extract_s']:.2f} s"
    if out.get("error") and out.get("unavailable"):
        note = f"{NOT_AVAILABLE}: {out['error']}"
    section.add(
        source=source,
        stream=stream,
        tool=tool,
        records=records,
        seconds=round(seconds, 2) if seconds else None,
        records_per_s=rps,
        requests=requests,
        requests_per_record=round(requests / records, 4) if records and requests else None,
        vs_sdk=ratio(rps, base),
        cpu_s=round(out["cpu_s"], 2) if out.get("cpu_s") is not None else None,
        note=note,
    )
    return rps


# HubSpot companies, the comparison: each tool several times, interleaved (one round
# runs every tool once), so a burst of load on the shared machine hits every tool alike.
COMPANY_TOOLS = [
    ("hub", "hub sync → SQLite, no history (company_history = false)", {"company_history": False}),
    ("hub-history", "hub sync → SQLite, with history (the default)", None),
    ("dlt-hubspot", TOOL_NAMES["dlt"], None),
    ("singer-meltano-companies", "", None),
]
COMPANY_GOALS = [
    # (tool, label, peer, peer label, target)
    ("hub", "no history", "singer-meltano-companies", "meltano-tap-hubspot", 2),
    ("hub", "no history", "dlt-hubspot", "dlt rest_api", 4),
    ("hub-history", "with history", "singer-meltano-companies", "meltano-tap-hubspot", 2),
    ("hub-history", "with history", "dlt-hubspot", "dlt rest_api", 4),
]


def server_cpu(sp: SandboxProcess) -> float:
    """CPU seconds the sandbox's process has used so far (``/proc``; 0 where there is none)."""
    try:
        fields = Path(f"/proc/{sp.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (AttributeError, OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _companies(
    section: Section, sp: SandboxProcess, workdir: Path, opts: Options, base: float | None
) -> None:
    """Every companies tool ``rounds`` times, interleaved; one row per tool with the median
    run (and the spread), then the goals from the medians."""
    label = "companies (/crm/v3/objects/companies)"
    rounds = opts.pick(smoke=1, quick=3, full=5)
    tools = [t for t in COMPANY_TOOLS if opts.peers or t[0].startswith("hub")]
    runs: dict[str, list[dict[str, Any]]] = {t[0]: [] for t in tools}
    for _ in range(rounds):
        for key, _name, extra in tools:
            before = server_cpu(sp)
            if key.startswith("hub"):
                out = run_hub(sp, "hubspot", workdir, streams=["companies"], extra=extra)
            else:
                out = run_peer(sp, key, "hubspot", workdir, opts)
            # The fake's own CPU for this tool's requests (a peer's start-up requests too):
            # what any tool reading through it waits for at the least.
            out["server_cpu_s"] = server_cpu(sp) - before
            runs[key].append(out)
    medians: dict[str, float] = {}
    cpu_rates: dict[str, float] = {}
    for key, name, _extra in tools:
        done = [
            o for o in runs[key] if o.get("records") and o.get("seconds") and not o.get("error")
        ]
        if not done:
            failed = runs[key][-1]
            _row(section, "hubspot", label, name or TOOL_NAMES["singer"], failed, base)
            continue
        rates = [o["records"] / o["seconds"] for o in done]
        middle = sorted(done, key=lambda o: o["records"] / o["seconds"])[len(done) // 2]
        medians[key] = _median(rates)
        out = dict(middle)
        spread = f"{len(done)} runs: {min(rates):,.0f}–{max(rates):,.0f} records/s"
        cpus = [o["cpu_s"] for o in done if o.get("cpu_s")]
        if cpus:
            cpu_rates[key] = _median([o["records"] / o["cpu_s"] for o in done if o.get("cpu_s")])
            spread += f", own CPU {min(cpus):.2f}–{max(cpus):.2f} s"
        served = [o["server_cpu_s"] for o in done if o.get("server_cpu_s")]
        if served:
            spread += f", the fake's CPU {min(served):.2f}–{max(served):.2f} s"
        out["note"] = "; ".join(x for x in (spread, out.get("note")) if x)
        tool = name or f"{TOOL_NAMES['singer']} ({out.get('tap')})"
        _row(section, "hubspot", label, tool, out, base)
        if key.startswith("hub"):
            per_record = out["requests"] / out["records"] if out.get("requests") else None
            limit = 0.011 if key == "hub" else 0.021
            what = "without history" if key == "hub" else "with history"
            section.goal(
                f"HubSpot companies requests per record, full read {what}",
                round(per_record, 4) if per_record is not None else None,
                limit,
                "<=",
            )
    for key, what, peer, peer_label, target in COMPANY_GOALS:
        if medians.get(key) and medians.get(peer):
            per_round = [
                h["records"] / h["seconds"] / (p["records"] / p["seconds"])
                for h, p in zip(runs[key], runs[peer])
                if h.get("seconds") and p.get("seconds") and h.get("records") and p.get("records")
            ]
            note = (
                f"median of {rounds} runs each; per round {min(per_round):.2f}–{max(per_round):.2f}×"
                if len(per_round) > 1
                else ""
            )
            section.goal(
                f"HubSpot companies ingest, hub {what} ÷ {peer_label} (records/s, same fake, same run)",
                round(medians[key] / medians[peer], 2),
                target,
                ">=",
                "×",
                note,
            )
        if cpu_rates.get(key) and cpu_rates.get(peer):
            # The same comparison per CPU second of each tool's own process: what the ratio
            # of records/s is on a machine where both get a free core (the fake serves each).
            section.notes.append(
                f"HubSpot companies, hub {what} ÷ {peer_label} per own CPU second: "
                f"{cpu_rates[key] / cpu_rates[peer]:.2f}× ({cpu_rates[key]:,.0f} vs "
                f"{cpu_rates[peer]:,.0f} records per CPU second, medians of {rounds} runs)."
            )
    if opts.peers and not opts.smoke:
        # tap-hubspot reads the legacy v2 API (one request per company): once is enough.
        out = run_peer(sp, "singer-hubspot-companies", "hubspot", workdir, opts)
        _row(section, "hubspot", label, f"{TOOL_NAMES['singer']} ({out.get('tap')})", out, base)


def run(opts: Options) -> Section:
    section = Section("ingest", "Ingest: records/s and requests per record (rate limits off)")
    companies = world_size(opts)
    workdir = opts.workdir / "ingest"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    with SandboxProcess(companies, opts.seed) as sp:
        section.notes.append(
            f"World of {companies:,} companies (seed {opts.seed}) served by `bench/sandbox_proc.py` "
            f"in a child process over loopback HTTP ({sp.url}); built in {sp.build_s:.1f} s. "
            "The hub runs in the harness process, each peer in its own process."
        )
        for source, stream, path in ENDPOINTS:
            base = None
            peers = PEERS_FOR[(source, stream)] if opts.peers else []
            sdk = [p for p in peers if p.startswith("sdk")]
            for peer in sdk:
                out = run_peer(sp, peer, source, workdir, opts)
                base = _row(section, source, f"{stream} ({path})", TOOL_NAMES["sdk"], out, None)
            if (source, stream) == ("hubspot", "companies") and connector_class(source):
                _companies(section, sp, workdir, opts, base)
                continue
            if connector_class(source) is None:
                _row(
                    section,
                    source,
                    f"{stream} ({path})",
                    TOOL_NAMES["hub"],
                    {"error": f"connector {source!r} not installed yet", "unavailable": True},
                    base,
                )
            else:
                out = run_hub(sp, source, workdir, streams=[stream])
                _row(section, source, f"{stream} ({path})", TOOL_NAMES["hub"], out, base)
            for peer in peers:
                if peer.startswith("sdk"):
                    continue
                out = run_peer(sp, peer, source, workdir, opts)
                tool = TOOL_NAMES[peer.split("-")[0]]
                if out.get("tap"):
                    tool = f"{tool} ({out['tap']})"
                _row(section, source, f"{stream} ({path})", tool, out, base)
        for name in CONNECTORS:
            if connector_class(name) is None:
                _row(
                    section,
                    name,
                    "all streams",
                    TOOL_NAMES["hub"],
                    {"error": f"connector {name!r} not installed yet", "unavailable": True},
                    None,
                )
                continue
            extra = None
            if name == "builtwith":
                # A fresh database knows no accounts: give it the world's domains to look up.
                extra = {"domains": builtwith_domains(companies, opts.seed)}
            out = run_hub(sp, name, workdir, extra=extra)
            if out.get("streams"):
                detail = ", ".join(f"{k} {v:,}" for k, v in out["streams"].items())
                floors = {k: v for k, v in (out.get("per_stream") or {}).items() if v[1]}
                if floors:
                    detail += "; requests/floor: " + ", ".join(
                        f"{k} {sent}/{floor}" for k, (sent, floor) in floors.items()
                    )
                out["note"] = detail + (f"; errors: {out.pop('error')}" if out.get("error") else "")
            _row(section, name, "all streams", TOOL_NAMES["hub"], out, None)
    if opts.peers:
        from peers.singer_taps import NOT_CONFIGURABLE

        section.notes.append(
            f"Singer taps: {NOT_CONFIGURABLE}; tap-hubspot's companies stream reads the legacy "
            "/companies/v2 API (one detail request per company). Every modelled stream of all "
            "three taps, against the world: the `taps` benchmark."
        )
    section.notes.append(
        "vs_sdk = records/s ÷ the official SDK's records/s on the same endpoint in this run. "
        "requests are counted by the server. The hub's proactive rate limiter is disabled for "
        "this benchmark (`rate_limits()` → []), as are the sandbox's budgets."
    )
    return section
