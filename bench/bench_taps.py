"""taps: three Singer taps nobody here wrote, read every modelled stream of a served sandbox.

``tap-stripe`` and ``tap-hubspot`` (singer-io) and ``meltano-tap-hubspot`` (MeltanoLabs), each
from its own venv (``bench/peers/singer_taps.py``), pointed at the sandbox served by a child
process (``bench/sandbox_proc.py --live``: the world ends now and its clock runs, as
``hub sandbox serve`` does) with no patch beyond their base URL (``bench/peers/singer_shim.py``).
Each selects every stream it offers that the fake models; per stream, the records it wrote
(distinct keys) are compared with what the world holds (``bench/peers/world_counts.py``).
"""

from __future__ import annotations

import subprocess
from typing import Any

from common import NOT_AVAILABLE, Options, Section, rate
from sandbox_proc import SandboxProcess, total_requests

START_DATE = "2020-01-01T00:00:00Z"  # before anything the world holds


def run(opts: Options) -> Section:
    from peers.singer_taps import API, MODELLED, NOT_CONFIGURABLE, TAPS, SingerUnavailable, run_tap

    section = Section("taps", "Singer taps: every modelled stream, records vs the world")
    companies = opts.pick(smoke=60, quick=500, full=2000)
    if not opts.peers:
        section.status = NOT_AVAILABLE
        section.notes.append(f"{NOT_AVAILABLE}: --no-peers")
        return section
    workdir = opts.workdir / "taps"
    workdir.mkdir(parents=True, exist_ok=True)
    matched = total = 0
    with SandboxProcess(companies, opts.seed, live=True) as sp:
        for tap in TAPS:
            sp.reset()
            try:
                out: dict[str, Any] = run_tap(tap, sp.url, opts.workdir, START_DATE, timeout=1800)
            except (SingerUnavailable, subprocess.TimeoutExpired) as exc:
                section.add(tap=tap, stream="–", note=f"{NOT_AVAILABLE}: {exc}")
                continue
            world = sp.world()
            requests = total_requests(sp.counts(), API[tap])
            for stream in MODELLED[tap]:
                got = out["streams"].get(stream, {"messages": 0, "records": 0})
                want = world.get(f"{tap}.{stream}")
                ok = want is not None and got["records"] == want
                matched += ok
                total += 1
                section.add(
                    tap=f"{tap} {out['version']}",
                    stream=stream,
                    tap_records=got["records"],
                    tap_messages=got["messages"],
                    world_records=want,
                    match="yes" if ok else "**no**",
                )
            section.notes.append(
                f"{tap} {out['version']}: {out['records']:,} RECORD messages in "
                f"{out['seconds']:.1f} s ({rate(out['records'], out['seconds']):,} /s), "
                f"{requests:,} requests."
            )
    section.goal("streams whose records match the world", matched, total, "==", "streams")
    section.notes.append(
        f"World of {companies:,} companies (seed {opts.seed}), served live. {NOT_CONFIGURABLE}. "
        "tap_records = distinct primary keys; tap_messages counts every RECORD message "
        "(tap-stripe re-emits an object for each of its update events). tap-stripe reads events "
        "of the last 30 days only (Stripe keeps no more), so the world column counts those."
    )
    return section
