"""noop: a re-run with no upstream change costs one request per stream and no CRM write.

In process (``sandbox.transport()``; the hub's clock bound to the world's, as in ``hub
demo``): a first cycle syncs every connector and runs map → health → playbooks → push; then,
with the world untouched, two more cycles do the same. The second cycle reads back what the
first one pushed (HubSpot bumps the modification time of every company the hub wrote to and
lists the tasks it created): that is an echo of the hub's own writes, shown separately. The
third cycle is the true no-change re-run: its requests per stream (the sandbox's counters
and the sync's own) and the HubSpot write requests it sends are the figures (goals from the
design: 1 and 0). BuiltWith may make no request at all: a
domain looked up within ``freshness_days`` is not looked up again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from common import Options, Section
from hubside import CONNECTORS, connector_for, missing_connectors

ORDER = ("hubspot", "stripe", "zendesk", "builtwith")  # BuiltWith reads the synced domains


def world_size(opts: Options) -> int:
    return opts.pick(smoke=40, quick=300, full=2000)


def _cycle(store: Any, config: Any, sandbox: Any, names: list[str]) -> dict[str, Any]:
    from hub.pipeline import run_pipeline
    from hub.sync import sync_connection

    hubspot = sandbox.apis["hubspot"]
    writes_before = len(getattr(hubspot, "writes", []) or [])
    sandbox.reset_counts()
    streams: dict[tuple[str, str], Any] = {}
    for name in names:
        connector = connector_for(name, None, limits="off")
        for result in sync_connection(store, connector, transport=sandbox.transport()):
            streams[(name, result.stream)] = result
    server = {name: dict(sandbox.apis[name].requests) for name in names}
    after = run_pipeline(
        store,
        config,
        steps=("map", "health", "playbooks", "push"),
        transport=sandbox.transport(),
    )
    writes = len(getattr(hubspot, "writes", []) or []) - writes_before
    return {"streams": streams, "server": server, "writes": writes, "pipeline": after}


def run(opts: Options) -> Section:
    from hub import clock
    from hub.demo import demo_config
    from hub.sandbox.world import build_sandbox
    from hub.store import Store

    section = Section("noop", "No-op: a re-run with nothing changed upstream")
    names = [n for n in ORDER if n not in missing_connectors(CONNECTORS)]
    for name in missing_connectors(CONNECTORS):
        section.add(
            connector=name, stream="*", note=f"not available: connector {name!r} not installed yet"
        )
    companies = world_size(opts)
    sandbox = build_sandbox(companies=companies, seed=opts.seed)
    clock.set_source(sandbox.world.now)
    workdir = opts.workdir / "noop"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            db = str(Path(tmp) / "hub.db")
            config = demo_config(db)
            store = Store(db)
            try:
                first = _cycle(store, config, sandbox, names)
                echo = _cycle(store, config, sandbox, names)
                second = _cycle(store, config, sandbox, names)
            finally:
                store.close()
    finally:
        clock.set_source(None)
    worst = 0
    for (name, stream), result in second["streams"].items():
        first_result = first["streams"].get((name, stream))
        echo_result = echo["streams"].get((name, stream))
        worst = max(worst, result.requests)
        section.add(
            connector=name,
            stream=stream,
            first_run_requests=first_result.requests if first_result else None,
            first_run_records=first_result.records if first_result else None,
            echo_requests=echo_result.requests if echo_result else None,
            echo_records=echo_result.records if echo_result else None,
            rerun_requests=result.requests,
            rerun_records=result.records,
            rerun_changed=result.changed,
            status=result.status,
            note=result.error or "; ".join(result.notes)[:200],
        )
    server_total = sum(sum(v.values()) for v in second["server"].values())
    client_total = sum(r.requests for r in second["streams"].values())
    section.goal("requests per stream on a no-change re-run (worst stream)", worst, 1, "<=")
    section.goal("CRM write requests on a no-change re-run", second["writes"], 0, "==")
    first_errors = {k: v for k, v in first["pipeline"].errors.items()}
    second_errors = {k: v for k, v in second["pipeline"].errors.items()}
    section.notes.append(
        f"World of {companies:,} companies, in process. Re-run: {client_total} sync requests "
        f"by the hub's count, {server_total} by the sandbox's; {second['writes']} HubSpot write "
        f"requests (first cycle: {first['writes']}, echo cycle: {echo['writes']}). echo_*: "
        "the second cycle, which reads back the hub's own writes of the first."
    )
    if first_errors or second_errors:
        section.notes.append(f"pipeline step errors: first {first_errors}, re-run {second_errors}")
    return section
