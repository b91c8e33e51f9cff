"""push: HubSpot and Zendesk write requests for N changed accounts (goal: N/100) and for none.

Full runs aim at N ≈ 10,000 (the issue's figure); quick runs at about 2,000.

In process (``sandbox.transport()``, the hub's clock bound to the world's): sync HubSpot
owners and companies, map, compute health, then push three times with ``hub.push.run_push``:

1. the first push: creates the hub's property group and properties, writes every account;
2. a push with nothing changed (goal: 0 write requests);
3. after changing every scored account's score in ``health_scores`` (a direct SQL update: the same
   as a health run that moved every score, without the cost of one), a push of N changed
   accounts (goal: N / 100 write requests, batches of 100).

Tasks are left out (no playbooks step), so the writes counted are company updates and the
one-time setup.

Zendesk beside it, on the same accounts and scores: Zendesk organizations are synced and
mapped (identity links), then the Zendesk pusher pushes the same three times. Its floor per
push of N changed organizations is ceil(N/100) ``update_many`` requests plus the job polls
(``job_statuses/show_many``, all jobs in flight polled by one request; the fake finishes a
job at its second poll, so two polls per round of up to 10 jobs). Write requests are the fake HubSpot's ``writes`` log. The HubSpot
connection's ``burst_limit`` is 250 (its maximum) and the limiter is fresh for each push, so
the figure is requests, not pacing.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import NOT_AVAILABLE, Options, Section, unavailable
from hubside import connector_for


def world_size(opts: Options) -> int:
    # About 64 % of the accounts get a score from HubSpot data alone: 16k companies ≈ 10k.
    return opts.pick(smoke=150, quick=3_000, full=16_000)


def _kind(method: str, path: str) -> str:
    if "/batch/update" in path:
        return "company batch updates"
    if "/properties/" in path:
        return "property setup"
    if "/objects/tasks" in path or "/associations/" in path:
        return "tasks"
    return f"other {method}"


def _open_tasks(store: Any, count: int, tag: str) -> None:
    """``count`` open outbox tasks, one per scored account with a HubSpot company."""
    from hub import clock
    from hub.playbooks import Outbox, task_id_for

    now = clock.iso()
    rows = store.db.execute(
        "SELECT a.id, a.owner_id FROM accounts a JOIN health_scores h ON h.account_id = a.id "
        "WHERE a.hubspot_company_id IS NOT NULL AND h.score IS NOT NULL ORDER BY a.id LIMIT ?",
        [count],
    ).fetchall()
    outbox = Outbox(store)
    for account_id, owner in rows:
        reason = f"bench {tag}"
        outbox.add(
            {
                "id": task_id_for(account_id, "bench", reason, now),
                "account_id": account_id,
                "playbook": "bench",
                "reason": reason,
                "status": "open",
                "subject": f"Bench task {tag}",
                "body": "Evidence:\n- a bench event",
                "priority": "MEDIUM",
                "due_at": now,
                "owner_id": owner,
                "evidence": [],
                "reasons": [{"playbook": "bench", "reason": reason, "title": "Bench"}],
                "created_at": now,
            }
        )


def _push(
    store: Any, config: Any, sandbox: Any, *, lose_first_create: bool = False
) -> dict[str, Any]:
    import httpx

    from hub.http.ratelimit import reset_shared_limiters
    from hub.push import run_push

    reset_shared_limiters()
    hubspot = sandbox.apis["hubspot"]
    before = len(hubspot.writes)
    requests_before = hubspot.total_requests()
    armed = [lose_first_create]

    def handler(request: httpx.Request) -> httpx.Response:
        response = sandbox.handle(request)
        if armed[0] and request.url.path.endswith("/tasks/batch/create"):
            armed[0] = False  # HubSpot made the tasks; the answer never arrives
            raise httpx.ReadTimeout("answer lost (bench)", request=request)
        return response

    started = time.perf_counter()
    result = run_push(store, config, transport=httpx.MockTransport(handler))
    seconds = time.perf_counter() - started
    writes = hubspot.writes[before:]
    kinds = Counter(_kind(w[0], w[1]) for w in writes)
    return {
        "writes": len(writes),
        "kinds": dict(kinds),
        "requests": hubspot.total_requests() - requests_before,
        "values": len(result.written),
        "companies": len({c.object_id for c in result.written}),
        "seconds": seconds,
        "tasks": sum(1 for t in result.tasks if t.action in ("created", "found")),
        "duplicates": _duplicates(hubspot),
        "status": result.status,
        "errors": result.errors,
        "run_id": result.run_id,
    }


def _undo(sandbox: Any, step: Any) -> dict[str, Any]:
    """Write requests of a revert or uninstall (``step(transport)`` → its ``UndoResult``)."""
    from hub.http.ratelimit import reset_shared_limiters

    reset_shared_limiters()
    hubspot = sandbox.apis["hubspot"]
    before, requests_before = len(hubspot.writes), hubspot.total_requests()
    started = time.perf_counter()
    result = step(sandbox.transport())
    writes = hubspot.writes[before:]
    return {
        "writes": len(writes),
        "kinds": dict(Counter(_kind(w[0], w[1]) for w in writes)),
        "requests": hubspot.total_requests() - requests_before,
        "values": result.count("value", "done"),
        "companies": len({i.object_id for i in result.items if i.what == "value"}),
        "seconds": time.perf_counter() - started,
        "tasks": result.count("task", "done"),
        "duplicates": 0,
        "status": result.status,
        "errors": result.errors,
    }


def _duplicates(hubspot: Any) -> int:
    """Hub markers that appear on more than one HubSpot task."""
    markers = Counter(
        body.split("hubtask", 1)[1][:20]
        for t in hubspot.objects("tasks")
        if "hubtask" in (body := str(t["properties"].get("hs_task_body") or ""))
    )
    return sum(n - 1 for n in markers.values() if n > 1)


def run(opts: Options) -> Section:
    try:
        import hub.push  # noqa: F401
        import plugins.hubspot_pusher  # noqa: F401
    except ImportError as exc:
        return unavailable("push", "Push", f"hub.push or the HubSpot pusher is missing ({exc})")
    from hub import clock
    from hub.demo import demo_config
    from hub.pipeline import run_pipeline
    from hub.sandbox.world import build_sandbox
    from hub.store import Store
    from hub.sync import sync_connection

    section = Section("push", "Push: HubSpot write requests per changed accounts")
    companies = world_size(opts)
    started = time.perf_counter()
    sandbox = build_sandbox(companies=companies, seed=opts.seed)
    clock.set_source(sandbox.world.now)
    workdir = opts.workdir / "push"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            db = str(Path(tmp) / "hub.db")
            config = demo_config(db)
            config.connections["hubspot"].settings["burst_limit"] = 250
            store = Store(db)
            try:
                connector = connector_for("hubspot", None, limits="off")
                sync_connection(
                    store, connector, streams=["owners", "companies"], transport=sandbox.transport()
                )
                prep = run_pipeline(
                    store, config, steps=("map", "health"), transport=sandbox.transport()
                )
                scored = store.db.execute(
                    "SELECT COUNT(*) FROM health_scores h JOIN accounts a ON a.id = h.account_id "
                    "WHERE a.hubspot_company_id IS NOT NULL AND a.hubspot_company_id != '' "
                    "AND h.score IS NOT NULL"
                ).fetchone()[0]
                prep_s = time.perf_counter() - started
                first = _push(store, config, sandbox)
                none = _push(store, config, sandbox)
                with store.db.conn:
                    store.db.execute(
                        "UPDATE health_scores SET score = CASE WHEN score >= 50 THEN score - 1 "
                        "ELSE score + 1 END"
                    )
                changed = _push(store, config, sandbox)
                config.push.update(max_tasks_per_run=0, max_tasks_per_owner=0)
                tasks_n = min(scored, 300)
                _open_tasks(store, tasks_n, "a")
                tasks = _push(store, config, sandbox)
                _open_tasks(store, tasks_n, "b")
                lost = _push(store, config, sandbox, lose_first_create=True)
                from hub.push.undo import revert_run, uninstall

                reverted = _undo(
                    sandbox, lambda t: revert_run(store, config, changed["run_id"], transport=t)
                )
                removed = _undo(
                    sandbox,
                    lambda t: uninstall(store, config, "hubspot", dry_run=False, transport=t),
                )
                zendesk = _zendesk(store, config, sandbox)
            finally:
                store.close()
    finally:
        clock.set_source(None)
    if prep.errors:
        section.notes.append(f"map/health errors: {prep.errors}")
    expected = -(-scored // 100)
    for label, out in (
        (f"first push ({scored:,} accounts, with setup)", first),
        ("nothing changed", none),
        (f"every score changed ({scored:,} accounts)", changed),
        (f"{tasks_n} new tasks", tasks),
        (f"{tasks_n} new tasks, the first batch create's answer lost", lost),
        (f"revert of the every-score push ({scored:,} accounts)", reverted),
        ("uninstall (the hub's properties and group)", removed),
    ):
        section.add(
            push=label,
            write_requests=out["writes"],
            by_kind=", ".join(f"{k} {v}" for k, v in sorted(out["kinds"].items())) or "none",
            all_requests=out["requests"],
            companies_written=out["companies"],
            values_written=out["values"],
            tasks_created=out["tasks"],
            duplicates=out["duplicates"],
            seconds=round(out["seconds"], 2),
            status=out["status"],
            note="; ".join(out["errors"])[:200],
        )
    section.goal("write requests with nothing changed", none["writes"], 0, "==")
    section.goal(
        f"write requests for {scored:,} changed accounts",
        changed["writes"],
        expected,
        "<=",
        note=f"batches of 100 → {expected}",
    )
    section.goal("duplicate tasks after a lost create answer", lost["duplicates"], 0, "==")
    section.goal(
        f"write requests to revert {scored:,} changed accounts",
        reverted["writes"],
        expected,
        "<=",
        note=f"batches of 100 → {expected}",
    )
    _zendesk_rows(section, zendesk)
    section.notes.append(
        f"Tasks: {tasks_n} outbox tasks per push, created in batches of 100, each association "
        "read back in batches; with the first batch create's answer lost after HubSpot made "
        f"the tasks, the push settles them by their marker ({lost['requests'] - tasks['requests']} "
        "extra requests) and creates none twice."
    )
    section.notes.append(
        f"World of {companies:,} companies; {scored:,} accounts with a HubSpot company and a "
        f"score (accounts without any scored measure have no score and nothing to push). Preparation (world, sync, map, health) took {prep_s:.1f} s."
    )
    if not scored:
        section.status = NOT_AVAILABLE
        section.notes.append("no scored accounts: the health step produced nothing to push")
    return section


# -- Zendesk organizations ----------------------------------------------------------------------


def _zendesk_kind(route: str) -> str:
    return {
        "PUT update_many_organizations": "update_many",
        "DELETE delete_organization_field": "field removal",
        "GET show_many_job_statuses": "job polls",
        "GET show_job_status": "job polls",
        "POST create_organization_field": "field setup",
        "PUT update_organization_field": "field setup",
        "GET list_organization_fields": "field list",
        "GET show_many_organizations": "organization reads",
    }.get(route, route)


def _zendesk_measured(sandbox: Any, step: Any) -> tuple[Any, Counter[str], int, float]:
    """Run ``step(transport)`` with fresh limiters: its result, the Zendesk requests it made by
    kind, their total, and its seconds."""
    from hub.http.ratelimit import reset_shared_limiters

    reset_shared_limiters()
    zendesk = sandbox.apis["zendesk"]
    before = Counter(zendesk.requests)
    started = time.perf_counter()
    result = step(sandbox.transport())
    seconds = time.perf_counter() - started
    delta = Counter(zendesk.requests)
    delta.subtract(before)
    kinds: Counter[str] = Counter()
    for route, n in delta.items():
        if n > 0:
            kinds[_zendesk_kind(route)] += n
    return result, kinds, sum(n for n in delta.values() if n > 0), seconds


def _zendesk_push(store: Any, config: Any, sandbox: Any) -> dict[str, Any]:
    from hub.push import run_push

    result, kinds, requests, seconds = _zendesk_measured(
        sandbox, lambda transport: run_push(store, config, transport=transport)
    )
    return {
        "writes": result.writes,
        "kinds": dict(kinds),
        "requests": requests,
        "updates": kinds.get("update_many", 0),
        "polls": kinds.get("job polls", 0),
        "run_id": result.run_id,
        "values": len(result.written),
        "companies": len({c.object_id for c in result.written}),
        "seconds": seconds,
        "status": result.status,
        "errors": result.errors,
    }


def _zendesk(store: Any, config: Any, sandbox: Any) -> dict[str, Any]:
    """Sync and link Zendesk organizations, then push the health fields three times."""
    from hub.pipeline import run_pipeline
    from hub.sync import sync_connection

    connector = connector_for("zendesk", None, limits="off")
    sync_connection(store, connector, streams=["organizations"], transport=sandbox.transport())
    run_pipeline(store, config, steps=("map",), transport=sandbox.transport())
    zconfig = config.model_copy(deep=True)
    zconfig.push.update(pushers=["zendesk"], tasks=False)
    zconfig.push["zendesk"] = {"job_poll_interval": 0}
    linked = store.db.execute(
        "SELECT COUNT(DISTINCT l.source_id) FROM account_links l JOIN health_scores h "
        "ON h.account_id = l.account_id WHERE l.source = 'zendesk' AND l.kind = 'organization' "
        "AND h.score IS NOT NULL"
    ).fetchone()[0]
    first = _zendesk_push(store, zconfig, sandbox)
    none = _zendesk_push(store, zconfig, sandbox)
    with store.db.conn:
        store.db.execute(
            "UPDATE health_scores SET score = CASE WHEN score >= 50 THEN score - 1 "
            "ELSE score + 1 END"
        )
    changed = _zendesk_push(store, zconfig, sandbox)
    from hub.push.undo import revert_run, uninstall

    reverted = _zendesk_undo(
        sandbox, lambda t: revert_run(store, zconfig, changed["run_id"], transport=t)
    )
    removed = _zendesk_undo(
        sandbox, lambda t: uninstall(store, zconfig, "zendesk", dry_run=False, transport=t)
    )
    return {
        "linked": linked,
        "first": first,
        "none": none,
        "changed": changed,
        "reverted": reverted,
        "removed": removed,
    }


def _zendesk_undo(sandbox: Any, step: Any) -> dict[str, Any]:
    """Requests of a Zendesk revert or uninstall (``step(transport)`` → its ``UndoResult``)."""
    result, kinds, requests, seconds = _zendesk_measured(sandbox, step)
    return {
        "writes": result.writes,
        "kinds": dict(kinds),
        "requests": requests,
        "updates": kinds.get("update_many", 0),
        "values": result.count("value", "done"),
        "companies": len({i.object_id for i in result.items if i.what == "value"}),
        "seconds": seconds,
        "status": result.status,
        "errors": result.errors,
    }


def _zendesk_rows(section: Section, zendesk: dict[str, Any]) -> None:
    changed = zendesk["changed"]
    n = changed["companies"]
    jobs = -(-n // 100)
    floor = jobs + 2 * -(-jobs // 10)
    for label, out in (
        (f"Zendesk: first push ({zendesk['first']['companies']:,} organizations, with setup)",
         zendesk["first"]),
        ("Zendesk: nothing changed", zendesk["none"]),
        (f"Zendesk: every score changed ({n:,} organizations)", changed),
        (f"Zendesk: revert of that push ({n:,} organizations)", zendesk["reverted"]),
        ("Zendesk: uninstall (the hub's organization fields)", zendesk["removed"]),
    ):  # fmt: skip
        section.add(
            push=label,
            write_requests=out["writes"],
            by_kind=", ".join(f"{k} {v}" for k, v in sorted(out["kinds"].items())) or "none",
            all_requests=out["requests"],
            companies_written=out["companies"],
            values_written=out["values"],
            seconds=round(out["seconds"], 2),
            status=out["status"],
            note="; ".join(out["errors"])[:200],
        )
    section.goal("Zendesk write requests with nothing changed", zendesk["none"]["writes"], 0, "==")
    section.goal(
        f"Zendesk update_many requests to revert {n:,} organizations",
        zendesk["reverted"]["updates"],
        jobs,
        "<=",
        note=f"100 per request → {jobs}",
    )
    section.goal(
        f"Zendesk update_many requests for {n:,} changed organizations",
        changed["updates"],
        jobs,
        "<=",
        note=f"100 per request → {jobs}",
    )
    section.goal(
        f"Zendesk requests for {n:,} changed organizations (bulk updates + job polls + field list)",
        changed["requests"],
        floor + 1,
        "<=",
        note=f"{jobs} update_many + {floor - jobs} polls + 1 field list",
    )
    section.notes.append(
        f"Zendesk: {zendesk['linked']:,} organizations linked to a scored account (external_id "
        "or domain; organizations linked only through their users' e-mail domain are left out, "
        "as users are not synced here). Requests are counted at the fake Zendesk by route."
    )
