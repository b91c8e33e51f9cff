"""serve: ``hub sandbox serve`` start time and paging speed per API over loopback.

Starts the real CLI (``hub sandbox serve --companies N --port 0``) as a subprocess, times it
from spawn to its "Sandbox ready" line (interpreter start-up and imports included, as a user
sees it), then pages one big list per API with a plain ``httpx.Client`` that decodes every
page, as any client must: Stripe invoices (``starting_after``), HubSpot contacts
(``paging.next.after``), Zendesk's ticket export (``after_cursor``, 1,000 per page) and
BuiltWith domain lookups (16 domains per request; a "record" is one domain).

Goals (issue 22): ready (banner printed) in under 10 s at 100,000 companies; every fake pages
≥ 10,000 records/s on one core. Quick runs serve a smaller world and project the start time
linearly to 100,000 (building is linear in the companies: every fake seeds per company).
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


def world_size(opts: Options) -> int:
    return opts.pick(smoke=200, quick=10_000, full=TARGET)


def start_server(
    companies: int, seed: int, timeout: float = 600
) -> tuple[subprocess.Popen, str, float, float]:
    """Spawn ``hub sandbox serve``; returns (process, url, seconds to ready, build seconds)."""
    hub = Path(sys.executable).with_name("hub")
    cmd = [str(hub)] if hub.exists() else [sys.executable, "-m", "hub"]
    cmd += ["sandbox", "serve", "--port", "0", "--companies", str(companies), "--seed", str(seed)]
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


def first_answers(url: str, spawned: float) -> dict[str, float]:
    """Seconds from spawn to each API's first answer, all four asked at once right after the
    banner (the server seeds a fake's records before its first answer)."""
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

    def ask(name: str) -> None:
        with httpx.Client(timeout=600) as client:
            asks[name](client).raise_for_status()
        out[name] = time.perf_counter() - spawned

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
    companies = world_size(opts)
    cap = opts.pick(smoke=500, quick=10_000, full=100_000)
    seconds_cap = opts.pick(smoke=3, quick=6, full=60)
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
    try:
        answers: dict[str, float] = {}
        seeded_s = None
        if proc is not None:
            answers = first_answers(url, start_server.spawned)  # type: ignore[attr-defined]
            seeded_s = wait_seeded(proc)
        scale = TARGET / companies if companies != TARGET else 1.0
        if answers:
            first = min(answers.values())
            section.add(
                api="(first answers)",
                what="all four asked at once after the banner",
                records=None,
                seconds=round(first, 2),
                records_per_s=None,
                note=", ".join(
                    f"{k} {v:.1f} s" for k, v in sorted(answers.items(), key=lambda x: x[1])
                )
                + (f"; every API seeded at {seeded_s:.1f} s" if seeded_s else "")
                + (
                    f"; projected to {TARGET:,}: first {first * scale:.0f} s, all "
                    f"{max(answers.values()) * scale:.0f} s"
                    if scale != 1.0
                    else ""
                ),
            )
            if not opts.smoke:
                section.goal(
                    f"serve --companies {TARGET:,}: banner and a first request answered",
                    round(first * scale, 1),
                    10,
                    "<",
                    "s",
                    note="measured" if scale == 1.0 else f"projected linearly from {companies:,}",
                )
                section.goal(
                    f"serve --companies {TARGET:,}: every API answering",
                    round(max(answers.values()) * scale, 1),
                    10,
                    "<",
                    "s",
                    note="measured" if scale == 1.0 else f"projected linearly from {companies:,}",
                )
        projected = ready_s * TARGET / companies if companies != TARGET else ready_s
        section.add(
            api="(start-up)",
            what=f"--companies {companies:,}",
            records=None,
            seconds=round(ready_s, 2),
            records_per_s=None,
            note=f"world built in {build_s:.1f} s; "
            + (
                f"projected to {TARGET:,}: {projected:.0f} s"
                if companies != TARGET
                else "at full size"
            ),
        )
        if not opts.smoke and not answers:
            # A smoke world is too small to project from (start-up is mostly fixed costs).
            section.goal(
                f"serve --companies {TARGET:,} starts",
                round(projected, 1),
                10,
                "<",
                "s",
                note="measured"
                if companies == TARGET
                else f"projected linearly from {companies:,}",
            )
        domains = builtwith_domains(companies, opts.seed)
        pagers = [
            ("stripe", "/v1/invoices, 100 per page", lambda c, d: page_stripe(c, url, cap, d)),
            (
                "hubspot",
                "/crm/v3/objects/contacts, 100 per page",
                lambda c, d: page_hubspot(c, url, cap, d),
            ),
            ("zendesk", "ticket export, 1,000 per page", lambda c, d: page_zendesk(c, url, cap, d)),
            (
                "builtwith",
                "domain lookups, 16 per request",
                lambda c, d: page_builtwith(c, url, cap, d, domains),
            ),
        ]
        with httpx.Client(timeout=60) as client:
            for api, what, pager in pagers:
                started = time.perf_counter()
                try:
                    n = pager(client, started + seconds_cap)
                    error = None
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    n, error = 0, f"{type(exc).__name__}: {str(exc)[:160]}"
                seconds = time.perf_counter() - started
                rps = rate(n, seconds) if n else None
                section.add(
                    api=api,
                    what=what,
                    records=n,
                    seconds=round(seconds, 2),
                    records_per_s=rps,
                    note=error or "",
                )
                if rps is not None:
                    section.goal(f"{api} paging over loopback", rps, 10_000, ">=", "records/s")
    finally:
        if proc is not None:
            stop_server(proc)
        if fallback is not None:
            fallback.__exit__(None, None, None)
    section.notes.append(
        f"Paging reads up to {cap:,} records or {seconds_cap} s per API with one keep-alive "
        "httpx client in the harness process (the server is the CLI's own process)."
    )
    return section
