"""serve: ``hub sandbox serve`` start time and paging speed per API over loopback.

Starts the real CLI (``hub sandbox serve --companies N --port 0``) as a subprocess, times it
from spawn to its "Sandbox ready" line (interpreter start-up and imports included, as a user
sees it), then pages one big list per API with a plain ``httpx.Client`` that decodes every
page, as any client must: Stripe invoices (``starting_after``), HubSpot contacts
(``paging.next.after``), Zendesk's ticket export (``after_cursor``, 1,000 per page) and
BuiltWith domain lookups (16 domains per request; a "record" is one domain).

Goals (issue 22): every API answering its first list request in under 10 s at 100,000
companies; every fake pages ≥ 10,000 records/s on one core. The one-core figure is records per
CPU second of the server process (read from ``/proc``), beside the wall-clock rate: on a shared
machine the wall figure measures the neighbours too. HubSpot is also read through search (the
first search makes every company's records; that cost is its own row) and batch reads.
Quick runs serve a smaller world and project start-up linearly to 100,000; ``--companies
100000`` measures it (``python bench/bench_serve.py --companies 100000``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import Options, Section, rate
from hubside import credentials

TARGET = 100_000
READY = re.compile(r"Sandbox ready in ([\d.]+)s at (http://[\d.]+:\d+)")
SEEDED = re.compile(r"All APIs seeded in ([\d.]+)s")
WARMED = re.compile(
    r"Stripe warmed up: ([\d,]+) companies' records generated in ([\d.]+)s \(([\d.]+)s CPU\)"
)


def world_size(opts: Options) -> int:
    size = os.environ.get("HUB_BENCH_SERVE_COMPANIES")
    return int(size) if size else opts.pick(smoke=200, quick=10_000, full=TARGET)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"


def start_server(
    companies: int, seed: int, timeout: float = 600, warm: bool = False
) -> tuple[subprocess.Popen, str, float, float]:
    """Spawn ``hub sandbox serve``; returns (process, url, seconds to ready, build seconds).
    Without ``warm``, ``--no-warm``: the cold figures are those of a client that pages the
    instant the server answers, with no warm-up running beside it."""
    hub = Path(sys.executable).with_name("hub")
    cmd = [str(hub)] if hub.exists() else [sys.executable, "-m", "hub"]
    cmd += ["sandbox", "serve", "--port", "0", "--companies", str(companies), "--seed", str(seed)]
    cmd += [] if warm else ["--no-warm"]
    env = {**os.environ, "COLUMNS": "400", "TERM": "dumb"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    start_server.spawned = started  # type: ignore[attr-defined]
    assert proc.stdout is not None
    seen = []
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=10)
            last = [ln for ln in seen if ln][-1:] or ["no output"]
            raise RuntimeError(f"hub sandbox serve exited with {proc.returncode}: {last[0][-200:]}")
        seen.append(line.strip())
        match = READY.search(line)
        if match:
            return proc, match.group(2), time.perf_counter() - started, float(match.group(1))
        if time.perf_counter() - started > timeout:
            proc.kill()
            raise RuntimeError("hub sandbox serve did not become ready")


def first_answers(url: str, spawned: float, pid: int | None = None) -> dict[str, float]:
    """Seconds from spawn to each API's first answer, all four asked at once right after the
    banner (the server seeds a fake's records before its first answer); with ``pid``, also
    the server's CPU seconds by then, as ``first_answers.cpu`` (what a quiet machine's wall
    time would be: start-up and seeding run on one thread)."""
    import threading

    creds = {name: credentials(name) for name in ("stripe", "hubspot", "zendesk", "builtwith")}
    zd = creds["zendesk"]
    asks = {
        "hubspot": lambda c: c.get(
            f"{url}/crm/v3/objects/contacts",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {creds['hubspot']['access_token']}"},
        ),
        "stripe": lambda c: c.get(
            f"{url}/v1/invoices", params={"limit": 1}, auth=(creds["stripe"]["api_key"], "")
        ),
        "zendesk": lambda c: c.get(
            f"{url}/api/v2/organizations.json", auth=(f"{zd['email']}/token", zd["api_token"])
        ),
        "builtwith": lambda c: c.get(
            f"{url}/v22/api.json",
            params={"KEY": creds["builtwith"]["api_key"], "LOOKUP": "example.com"},
        ),
    }
    out: dict[str, float] = {}
    cpu: dict[str, float] = {}
    first_answers.cpu = cpu  # type: ignore[attr-defined]

    def ask(name: str) -> None:
        with httpx.Client(timeout=600) as client:
            asks[name](client).raise_for_status()
        out[name] = time.perf_counter() - spawned
        if pid is not None:
            cpu[name] = cpu_seconds(pid)

    threads = [threading.Thread(target=ask, args=(n,)) for n in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def wait_seeded(proc: subprocess.Popen, timeout: float = 600) -> float | None:
    """The server's "All APIs seeded in N s" figure (None if it never says so)."""
    assert proc.stdout is not None
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        if match := SEEDED.search(line):
            return float(match.group(1))
    return None


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _page(client: httpx.Client, url: str, params: dict[str, Any], **kw: Any) -> Any:
    response = client.get(url, params=params, **kw)
    response.raise_for_status()
    return response.json()


def page_stripe(client: httpx.Client, base: str, cap: int, deadline: float) -> int:
    key = credentials("stripe")["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    params: dict[str, Any] = {"limit": 100}
    n = 0
    while n < cap and time.perf_counter() < deadline:
        body = _page(client, f"{base}/v1/invoices", params, headers=headers)
        n += len(body["data"])
        if not body.get("has_more") or not body["data"]:
            break
        params = {"limit": 100, "starting_after": body["data"][-1]["id"]}
    return n


def page_hubspot(client: httpx.Client, base: str, cap: int, deadline: float) -> int:
    token = credentials("hubspot")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    params: dict[str, Any] = {"limit": 100}
    n = 0
    while n < cap and time.perf_counter() < deadline:
        body = _page(client, f"{base}/crm/v3/objects/contacts", params, headers=headers)
        n += len(body["results"])
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            break
        params = {"limit": 100, "after": after}
    return n


def hubspot_search(client: httpx.Client, base: str, cap: int, deadline: float) -> int:
    """Contacts by ``hs_lastmodifieddate`` ascending, 200 per page up to the 10,000 cap."""
    token = credentials("hubspot")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    query: dict[str, Any] = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 200,
    }
    n = 0
    while n < min(cap, 10_000) and time.perf_counter() < deadline:
        response = client.post(
            f"{base}/crm/v3/objects/contacts/search", json=query, headers=headers
        )
        response.raise_for_status()
        body = response.json()
        n += len(body["results"])
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after or int(after) >= 10_000:
            break
        query["after"] = after
    return n


def hubspot_batch_read(
    client: httpx.Client, base: str, cap: int, deadline: float, ids: list[str]
) -> int:
    """Contacts by id, 100 per batch read, in a scattered order (every 7th id first)."""
    token = credentials("hubspot")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    order = [i for r in range(7) for i in ids[r::7]][:cap]
    n = 0
    for i in range(0, len(order), 100):
        if time.perf_counter() > deadline:
            break
        inputs = [{"id": x} for x in order[i : i + 100]]
        response = client.post(
            f"{base}/crm/v3/objects/contacts/batch/read", json={"inputs": inputs}, headers=headers
        )
        response.raise_for_status()
        n += len(response.json()["results"])
    return n


def contact_ids(client: httpx.Client, base: str, count: int) -> list[str]:
    token = credentials("hubspot")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    out: list[str] = []
    params: dict[str, Any] = {"limit": 100, "properties": "email"}
    while len(out) < count:
        body = _page(client, f"{base}/crm/v3/objects/contacts", params, headers=headers)
        out.extend(r["id"] for r in body["results"])
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            break
        params["after"] = after
    return out[:count]


def make_portal(client: httpx.Client, base: str) -> None:
    """One search of one record: the fake makes every company's records first."""
    token = credentials("hubspot")["access_token"]
    response = client.post(
        f"{base}/crm/v3/objects/deals/search",
        json={"limit": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()


def page_zendesk(client: httpx.Client, base: str, cap: int, deadline: float) -> int:
    creds = credentials("zendesk")
    auth = (f"{creds['email']}/token", creds["api_token"])
    params: dict[str, Any] = {"start_time": 0, "per_page": 1000}
    n = 0
    while n < cap and time.perf_counter() < deadline:
        body = _page(client, f"{base}/api/v2/incremental/tickets/cursor.json", params, auth=auth)
        n += len(body.get("tickets") or [])
        if body.get("end_of_stream") or not body.get("after_cursor"):
            break
        params = {"cursor": body["after_cursor"], "per_page": 1000}
    return n


def page_builtwith(
    client: httpx.Client, base: str, cap: int, deadline: float, domains: list[str]
) -> int:
    key = credentials("builtwith")["api_key"]
    n = 0
    for i in range(0, min(cap, len(domains)), 16):
        if time.perf_counter() > deadline:
            break
        batch = domains[i : i + 16]
        _page(
            client, f"{base}/v22/api.json", {"KEY": key, "LOOKUP": ",".join(batch), "NOMETA": "yes"}
        )
        n += len(batch)
    return n


def run(opts: Options) -> Section:
    from bench_ingest import builtwith_domains

    section = Section("serve", "Serve: `hub sandbox serve` start-up and paging speed per API")
    section.columns = ["api", "what", "records", "seconds", "records_per_s", "server_cpu_s"]
    section.columns += ["records_per_cpu_s", "note"]
    companies = world_size(opts)
    cap = opts.pick(smoke=500, quick=10_000, full=100_000)
    seconds_cap = opts.pick(smoke=3, quick=6, full=60)
    load_before = load()
    fallback = None
    try:
        proc, url, ready_s, build_s = start_server(companies, opts.seed)
    except RuntimeError as exc:
        # Still measure the sandbox (same build_sandbox + Sandbox.serve) and say why.
        from sandbox_proc import SandboxProcess

        fallback = SandboxProcess(companies, opts.seed).__enter__()
        proc, url, ready_s, build_s = None, fallback.url, fallback.start_s, fallback.build_s
        section.notes.append(
            f"{exc}; start-up and paging measured with "
            "bench/sandbox_proc.py instead (the same build_sandbox and Sandbox.serve)."
        )
    pid = proc.pid if proc is not None else os.getpid()
    try:
        answers: dict[str, float] = {}
        answer_cpu: dict[str, float] = {}
        seeded_s = None
        if proc is not None:
            answers = first_answers(url, start_server.spawned, proc.pid)  # type: ignore[attr-defined]
            answer_cpu = dict(first_answers.cpu)  # type: ignore[attr-defined]
            seeded_s = wait_seeded(proc)
        scale = TARGET / companies if companies != TARGET else 1.0
        measured = "measured" if scale == 1.0 else f"projected linearly from {companies:,}"
        section.add(
            api="(start-up)",
            what=f"banner, --companies {companies:,}",
            records=None,
            seconds=round(ready_s, 2),
            records_per_s=None,
            note=f"world built in {build_s:.1f} s"
            + (f"; every API seeded at {seeded_s:.1f} s" if seeded_s else "")
            + (f"; projected to {TARGET:,}: {ready_s * scale:.0f} s" if scale != 1.0 else "")
            + f"; load average {load_before} before the start",
        )
        for api, seconds in sorted(answers.items(), key=lambda x: x[1]):
            section.add(
                api=api,
                what="first list request answered (all four asked at once after the banner)",
                records=None,
                seconds=round(seconds, 2),
                records_per_s=None,
                server_cpu_s=round(answer_cpu[api], 2) if api in answer_cpu else None,
                note=(f"projected to {TARGET:,}: {seconds * scale:.1f} s; " if scale != 1.0 else "")
                + "server_cpu_s: the server process's CPU seconds by then (imports included)",
            )
        if answers and not opts.smoke:
            section.goal(
                f"serve --companies {TARGET:,}: every API answering its first list request",
                round(max(answers.values()) * scale, 1),
                10,
                "<",
                "s",
                note=f"{measured}, wall; load average {load_before} before the start",
            )
            if answer_cpu:
                section.goal(
                    f"serve --companies {TARGET:,}: the same in server CPU seconds (+ interpreter start)",
                    round(max(answer_cpu.values()) * scale, 1),
                    10,
                    "<",
                    "s",
                    note=f"{measured}; a quiet machine's wall time",
                )
        elif not opts.smoke:
            section.goal(
                f"serve --companies {TARGET:,} starts",
                round(ready_s * scale, 1),
                10,
                "<",
                "s",
                note=measured,
            )
        domains = builtwith_domains(companies, opts.seed)
        ids: list[str] = []
        pagers: list[tuple[str, str, Any]] = [
            ("stripe", "/v1/invoices, 100 per page", lambda c, d: page_stripe(c, url, cap, d)),
            (
                "hubspot",
                "/crm/v3/objects/contacts, 100 per page",
                lambda c, d: page_hubspot(c, url, cap, d),
            ),
            (
                "hubspot",
                "contacts batch read, 100 ids per request, scattered",
                lambda c, d: hubspot_batch_read(c, url, cap, d, ids),
            ),
            (
                "hubspot",
                "(first search: makes every company's records)",
                lambda c, d: make_portal(c, url),
            ),
            (
                "hubspot",
                "contacts search by lastmodifieddate, 200 per page (10,000 cap)",
                lambda c, d: hubspot_search(c, url, cap, d),
            ),
            ("zendesk", "ticket export, 1,000 per page", lambda c, d: page_zendesk(c, url, cap, d)),
            (
                "builtwith",
                "domain lookups, 16 per request, first pass",
                lambda c, d: page_builtwith(c, url, cap, d, domains),
            ),
        ]
        worst: dict[str, float] = {}
        with httpx.Client(timeout=600) as client:
            for api, what, pager in pagers:
                if "batch read" in what:
                    # Ids from the far end of the list too: companies not made by the list pass.
                    ids[:] = contact_ids(client, url, min(cap, 20_000))
                cpu0 = cpu_seconds(pid)
                started = time.perf_counter()
                try:
                    n = pager(client, started + seconds_cap)
                    error = None
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    n, error = 0, f"{type(exc).__name__}: {str(exc)[:160]}"
                seconds = time.perf_counter() - started
                cpu = cpu_seconds(pid) - cpu0
                if n is None:  # a one-off step, not a pager
                    section.add(api=api, what=what, records=None, seconds=round(seconds, 2),
                                records_per_s=None, server_cpu_s=round(cpu, 2),
                                note=error or f"load average {load()}")  # fmt: skip
                    continue
                per_cpu = rate(n, cpu) if n and cpu > 0 else None
                section.add(
                    api=api,
                    what=what,
                    records=n,
                    seconds=round(seconds, 2),
                    records_per_s=rate(n, seconds) if n else None,
                    server_cpu_s=round(cpu, 2),
                    records_per_cpu_s=per_cpu,
                    note=error or f"load average {load()}",
                )
                if per_cpu is not None:
                    worst[api] = min(worst.get(api, per_cpu), per_cpu)
        for api, figure in worst.items():
            section.goal(
                f"{api} paging, records per server CPU second (slowest of its reads)",
                figure,
                10_000,
                ">=",
                "records/s",
            )
    finally:
        if proc is not None:
            stop_server(proc)
        if fallback is not None:
            fallback.__exit__(None, None, None)
    if fallback is None:
        import serve_warm

        warmed = serve_warm.measure(
            section, companies, opts.seed, cap, seconds_cap, sys.modules[__name__]
        )
        if warmed is not None:
            section.goal(
                "stripe paging after the warm-up, records per server CPU second (first pass)",
                warmed,
                10_000,
                ">=",
                "records/s",
            )
    section.notes.append(
        "The rows above the warm-up's are a server started with --no-warm (a client paging "
        "the instant the server answers: the cold first pass); the warm-up rows are a second "
        "server with its warm-up on."
    )
    section.notes.append(
        f"Paging reads up to {cap:,} records or {seconds_cap} s per read with one keep-alive "
        "httpx client in the harness process (the server is the CLI's own process); "
        "records_per_cpu_s = records ÷ the server process's CPU seconds over that read (one "
        "core: the goal), records_per_s = records ÷ wall seconds (client decoding and the "
        "machine's load included)."
    )
    return section


def main(argv: list[str] | None = None) -> int:
    """``python bench/bench_serve.py [--companies N] [--seed S] [--quick]``: this benchmark
    alone, printed as markdown (``--companies 100000``: start-up measured, not projected)."""
    import argparse

    from common import machine_info
    from run import render_markdown

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, help="world size (default by mode)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="cap paging at 10,000 records")
    args = parser.parse_args(argv)
    if args.companies:
        os.environ["HUB_BENCH_SERVE_COMPANIES"] = str(args.companies)
    opts = Options(mode="quick" if args.quick else "full", seed=args.seed)
    started = time.perf_counter()
    section = run(opts)
    section.seconds = time.perf_counter() - started
    mode = f"serve, {world_size(opts):,} companies"
    print(render_markdown([section], machine_info(), mode, section.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
