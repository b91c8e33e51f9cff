"""serve, warm-up: what ``hub sandbox serve``'s background warm-up costs and buys (issue 22).

Starts the server with its warm-up on (the default), and from the "All APIs seeded" line
probes it with small requests until the "Stripe warmed up" line (each request's latency: what
a client meets while the histories are generated), then pages Stripe's invoices once, as a
first pass started after the warm-up. Part of ``bench_serve.py``'s section.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import httpx
from hubside import credentials


def _probe(url: str, stop: threading.Event, out: list[tuple[float, str, bool]]) -> None:
    """Small Stripe and HubSpot list requests, 20 per second, each timed: (seconds, path,
    whether it was that list's first request: a list's first request builds its index of
    companies, warm-up or not)."""
    stripe = {"Authorization": f"Bearer {credentials('stripe')['api_key']}"}
    hubspot = {"Authorization": f"Bearer {credentials('hubspot')['access_token']}"}
    asks = [
        (f"{url}/v1/invoices", {"limit": 10}, stripe),
        (f"{url}/v1/customers", {"limit": 10}, stripe),
        (f"{url}/crm/v3/objects/contacts", {"limit": 10}, hubspot),
    ]
    with httpx.Client(timeout=600) as client:
        i = 0
        while not stop.is_set():
            target, params, headers = asks[i % len(asks)]
            started = time.perf_counter()
            client.get(target, params=params, headers=headers).raise_for_status()
            out.append((time.perf_counter() - started, target[len(url) :], i < len(asks)))
            i += 1
            stop.wait(0.05)


def latency_note(samples: list[tuple[float, str, bool]]) -> str:
    """Median, p95 and max of the requests after each list's first (and the firsts apart)."""
    later = [(s * 1000, path) for s, path, first in samples if not first]
    if not later:
        return "no requests"
    ms = sorted(m for m, _ in later)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    worst = max(later)
    firsts = ", ".join(f"{path} {s * 1000:.0f} ms" for s, path, first in samples if first)
    return (
        f"{len(ms)} requests: median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, "
        f"max {worst[0]:.1f} ms ({worst[1]})" + (f"; each list's first: {firsts}" if firsts else "")
    )


def measure(
    section: Any, companies: int, seed: int, cap: int, seconds_cap: float, helpers: Any
) -> float | None:
    """Add the warm-up rows to ``section``; returns the after-warm-up first pass's records per
    server CPU second (None when not measured)."""
    proc, url, _, _ = helpers.start_server(companies, seed, warm=True)
    pid = proc.pid
    try:
        seeded = helpers.wait_seeded(proc)
        cpu0, wall0 = helpers.cpu_seconds(pid), time.perf_counter()
        stop, during = threading.Event(), []
        prober = threading.Thread(target=_probe, args=(url, stop, during), daemon=True)
        prober.start()
        made = wall = thread_cpu = None
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            if not line:
                break
            if match := helpers.WARMED.search(line):
                made = int(match.group(1).replace(",", ""))
                wall, thread_cpu = float(match.group(2)), float(match.group(3))
                break
        server_cpu = helpers.cpu_seconds(pid) - cpu0
        observed = time.perf_counter() - wall0
        stop.set()
        prober.join()
        if made is None:
            section.notes.append("warm-up: the server never said it had warmed up")
            return None
        section.add(
            api="stripe",
            what="warm-up in the background after seeding (histories of every company)",
            records=made,
            seconds=round(wall, 2),
            records_per_s=None,
            server_cpu_s=round(server_cpu, 2),
            note=f"companies generated; the warming thread's CPU {thread_cpu:.1f} s; "
            f"{observed:.1f} s from the seeded line (at {seeded or 0:.1f} s) to the warmed "
            f"line; server_cpu_s includes the probe's requests; load average {helpers.load()}",
        )
        after: list[float] = []
        stop = threading.Event()
        prober = threading.Thread(target=_probe, args=(url, stop, after), daemon=True)
        prober.start()
        time.sleep(2)
        stop.set()
        prober.join()
        section.add(
            api="stripe+hubspot",
            what="small list requests (limit 10), 20/s, during the warm-up",
            records=None,
            seconds=round(statistics.median(s for s, _, _ in during), 4) if during else None,
            records_per_s=None,
            note=f"{latency_note(during)}; after it, 2 s: {latency_note(after)}",
        )
        with httpx.Client(timeout=600) as client:
            cpu0 = helpers.cpu_seconds(pid)
            started = time.perf_counter()
            n = helpers.page_stripe(client, url, cap, started + seconds_cap)
            seconds = time.perf_counter() - started
            cpu = helpers.cpu_seconds(pid) - cpu0
        per_cpu = helpers.rate(n, cpu) if n and cpu > 0 else None
        section.add(
            api="stripe",
            what="/v1/invoices, 100 per page, first pass started after the warm-up",
            records=n,
            seconds=round(seconds, 2),
            records_per_s=helpers.rate(n, seconds) if n else None,
            server_cpu_s=round(cpu, 2),
            records_per_cpu_s=per_cpu,
            note=f"load average {helpers.load()}",
        )
        return per_cpu
    finally:
        helpers.stop_server(proc)
