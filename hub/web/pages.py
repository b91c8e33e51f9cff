"""The pages of ``hub serve``: one handler per page, each a read model call and a template.

Handlers hold no SQL (``hub.store.web`` has it) and no business rule: the score explanation
comes from ``hub.health.explain``, run status from ``hub.status``, plugins from
``hub.plugins``. GET handlers are plain functions (Starlette runs them on worker threads,
each with its own read-only connection); actions are POST handlers that go through
``read_form`` (allowed, CSRF, same origin) first.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import platform
import threading
from importlib import metadata
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from hub import clock
from hub.errors import HubError
from hub.portfolio import views as portfolio_views
from hub.store import web as model
from hub.store import web_admin as admin
from hub.vocabulary import vocabulary
from hub.web import charts
from hub.web.app import HERE, read_form, state_of
from hub.web.settings import masked_config

log = logging.getLogger("hub.web")

MESSAGES = {
    "linked": "Link recorded. It takes effect at the next 'hub map' (or scheduled run).",
    "unlinked": "Unlink recorded. It takes effect at the next 'hub map' (or scheduled run).",
    "removed": "Manual link removed. The automatic rules apply again at the next 'hub map'.",
    "started": "Run started: this page shows it when it finishes (reload).",
    "busy": "Another hub process holds the database lock: the run was not started.",
}
EXPORT_COLUMNS = [
    "id",
    "name",
    "domain",
    "owner_name",
    "score",
    "band",
    "trend_7d",
    "trend_30d",
    "coverage",
    "mrr",
    "plan",
    "segment",
    "lifecycle_stage",
    "renewal_date",
    "sources",
]


def _message(request: Request) -> str:
    return MESSAGES.get(request.query_params.get("msg", ""), "")


def _int(value: Any, default: int = 1) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


# -- pages ---------------------------------------------------------------------------------


def overview(request: Request) -> Response:
    state = state_of(request)
    data = model.overview(state.store())
    _why_they_moved(state.store(), data, state.options.config)
    return state.render(
        request,
        "overview.html",
        data=data,
        histogram=charts.histogram(data["histogram"]),
        title="Overview",
        today=clock.now().date().isoformat(),
    )


def _why_they_moved(store: Any, data: dict[str, Any], config: Any) -> None:
    """The week's movers get the cause ``hub demo`` gives (``hub.health.biggest_movers``: a
    cap that moved the score, then the measures that moved its way, never one that only
    gained or lost data; a move only coverage explains says so); else its first driver."""
    from hub.health import biggest_movers, moves_for
    from hub.health.moves import coverage_change

    down, up = data.get("movers_down") or [], data.get("movers_up") or []
    if not down and not up:
        return
    found = biggest_movers(store, 7, falls=len(down), climbs=len(up), config=config)
    causes = {m.account_id: "; ".join(m.reasons[:3]) for m in found if m.reasons}
    ids = [row["id"] for row in (*down, *up) if row["id"] not in causes]
    for account_id, moves in moves_for(store, 7, account_ids=ids, config=config).items():
        causes[account_id] = coverage_change(moves)
    for row in (*down, *up):
        row["cause"] = causes.get(row["id"]) or row.get("cause") or ""


def accounts(request: Request) -> Response:
    state = state_of(request)
    store = state.store()
    q = model.AccountQuery.from_params(request.query_params)
    data = model.accounts(store, q)
    if q.page > data["pages"] and data["total"]:
        raise HTTPException(404, f"There is no page {q.page}: the list has {data['pages']}.")
    return state.render(
        request,
        "accounts.html",
        q=q,
        data=data,
        choices=model.account_choices(store),
        sources=vocabulary(),
        title="Accounts",
    )


def _export_rows(request: Request) -> list[dict[str, Any]]:
    q = model.AccountQuery.from_params(request.query_params)
    rows = model.accounts(state_of(request).store(), q, everything=True)["rows"]
    return [{c: r.get(c) for c in EXPORT_COLUMNS} for r in rows]


def accounts_csv(request: Request) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in _export_rows(request):
        row["sources"] = " ".join(row["sources"] or [])
        # A cell a spreadsheet would run as a formula is written as text.
        writer.writerow(
            {
                k: ("'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v)
                for k, v in row.items()
            }
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="accounts.csv"'},
    )


def accounts_json(request: Request) -> Response:
    rows = _export_rows(request)
    return JSONResponse({"count": len(rows), "accounts": rows})


def _account_or_404(request: Request) -> dict[str, Any]:
    account_id = request.path_params["account_id"]
    found = model.account(state_of(request).store(), account_id)
    if found is None:
        raise HTTPException(404, f"There is no account {account_id!r}.")
    return found


def _explain(request: Request, account_id: str) -> dict[str, Any] | None:
    from hub.health import explain

    state = state_of(request)
    try:
        return explain(state.store(), account_id, state.options.config)
    except HubError as exc:
        log.info("web: no explanation for %s: %s", account_id, exc)
        return None


def account(request: Request) -> Response:
    state = state_of(request)
    store = state.store()
    acc = _account_or_404(request)
    types = [t for t in request.query_params.getlist("type") if t][:20]
    source = request.query_params.get("source", "")[:100]
    history = model.health_history(store, acc["id"])
    portfolio_views.ensure_portfolio(state.options.db_path)
    explained = _explain(request, acc["id"])
    bands = (explained or {}).get("bands") or None
    return state.render(
        request,
        "account.html",
        acc=acc,
        health=acc["health"],
        explained=explained,
        trend_svg=charts.score_trend(history, bands if isinstance(bands, dict) else None),
        mrr=charts.mrr_steps(model.mrr_history(store, acc["id"], acc.get("mrr"))),
        timeline=model.timeline(store, acc["id"], types=types, source=source),
        types=types,
        source=source,
        tasks=model.tasks(store, acc["id"]),
        links=model.links(store, acc["id"]),
        vocab=vocabulary(),
        message=_message(request),
        title=acc["name"] or acc["id"],
    )


def explain_page(request: Request) -> Response:
    state = state_of(request)
    acc = _account_or_404(request)
    explained = _explain(request, acc["id"])
    return state.render(
        request,
        "explain.html",
        acc=acc,
        explained=explained,
        raw=json.dumps(explained, indent=2, default=str) if explained else "",
        title=f"Explain · {acc['name'] or acc['id']}",
    )


def portfolio(request: Request) -> Response:
    state = state_of(request)
    portfolio_views.ensure_portfolio(state.options.db_path)
    books = admin.band_mix_by_owner(state.store())
    period = request.query_params.get("period", "")[:20]
    try:
        retention = portfolio_views.portfolio_books(state.store(), period, state.options.config)
        problem = ""
    except HubError as exc:
        retention, problem = None, str(exc)
    return state.render(
        request,
        "portfolio.html",
        books=books,
        retention=retention,
        period=period,
        problem=problem,
        nrr=charts.retention_bars(retention["books"]) if retention else "",
        mix=charts.band_bars(books),
        mrr_mix=charts.band_bars(books, key="mrr_by_band"),
        title="Portfolio",
    )


def identity(request: Request) -> Response:
    state = state_of(request)
    data = admin.identity_review(state.store())
    config = state.options.config
    configured = dict(config.identity.overrides) if config is not None else {}
    return state.render(
        request,
        "identity.html",
        data=data,
        configured=configured,
        message=_message(request),
        title="Identity review",
    )


def runs(request: Request) -> Response:
    state = state_of(request)
    params = request.query_params
    q = admin.RunQuery(
        connection=params.get("connection", "")[:100],
        kind=params.get("kind", "")[:40],
        status=params.get("status", "")[:40],
        page=_int(params.get("page")),
    )
    data = admin.runs(state.store(), q)
    config = state.options.config
    from hub.store.webhooks import stats as webhook_stats

    return state.render(
        request,
        "runs.html",
        q=q,
        data=data,
        connections=sorted(config.connections) if config is not None else [],
        running=dict(state.running),
        webhooks=webhook_stats(state.store()),
        message=_message(request),
        title="Runs",
    )


def run_detail(request: Request) -> Response:
    state = state_of(request)
    found = admin.run(state.store(), request.path_params["run_id"])
    if found is None:
        raise HTTPException(404, "There is no such run.")
    return state.render(request, "run.html", run=found, title=f"Run {found['id']}")


def settings(request: Request) -> Response:
    from hub.plugins import plugin_info

    state = state_of(request)
    config = state.options.config
    versions = {"python": platform.python_version()}
    for dist in ("cs-hub", "starlette", "jinja2", "uvicorn", "sqlite-utils", "httpx", "pydantic"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return state.render(
        request,
        "settings.html",
        config=masked_config(config) if config is not None else None,
        config_path=str(config.path) if config is not None and config.path else "",
        db_path=state.options.db_path,
        options=state.options,
        plugins=plugin_info(),
        versions=versions,
        title="Settings",
    )


def favicon(request: Request) -> Response:
    return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")


# -- actions -------------------------------------------------------------------------------


def _writable(request: Request) -> Any:
    from hub.store import Store

    return Store(state_of(request).options.db_path)


async def identity_link(request: Request) -> Response:
    form = await read_form(request)
    key, account_id = form.get("entity", "").strip(), form.get("account_id", "").strip()

    def work() -> None:
        store = _writable(request)
        try:
            if not admin.entity_exists(store, key):
                raise HTTPException(404, f"There is no source record {key!r}.")
            if not admin.account_exists(store, account_id):
                raise HTTPException(404, f"There is no account {account_id!r}.")
            admin.set_identity_override(store, key, account_id, note=form.get("note", "")[:200])
        finally:
            store.close()

    await run_in_threadpool(work)
    return RedirectResponse("/identity?msg=linked", 303)


async def identity_unlink(request: Request) -> Response:
    form = await read_form(request)
    key = form.get("entity", "").strip()
    back = form.get("account_id", "").strip()

    def work() -> None:
        store = _writable(request)
        try:
            if not admin.entity_exists(store, key):
                raise HTTPException(404, f"There is no source record {key!r}.")
            admin.set_identity_override(store, key, None, note="unlinked on the web")
        finally:
            store.close()

    await run_in_threadpool(work)
    if back:
        return RedirectResponse(f"/accounts/{quote(back, safe='')}?msg=unlinked#links", 303)
    return RedirectResponse("/identity?msg=unlinked", 303)


async def identity_forget(request: Request) -> Response:
    form = await read_form(request)
    key = form.get("entity", "").strip()

    def work() -> bool:
        store = _writable(request)
        try:
            return admin.remove_identity_override(store, key)
        finally:
            store.close()

    if not await run_in_threadpool(work):
        raise HTTPException(404, f"There is no manual link for {key!r}.")
    return RedirectResponse("/identity?msg=removed", 303)


async def run_now(request: Request) -> Response:
    form = await read_form(request)
    state = state_of(request)
    config = state.options.config
    name = form.get("connection", "")
    if config is None:
        raise HTTPException(
            409, "No hub.toml is loaded: start hub serve with --config to run connections."
        )
    if name not in config.connections:
        raise HTTPException(404, f"There is no connection {name!r}.")
    started = await run_in_threadpool(_start_run, state, name)
    query = urlencode({"connection": name, "msg": "started" if started else "busy"})
    return RedirectResponse(f"/runs?{query}", 303)


def _start_run(state: Any, name: str) -> bool:
    """Take the database lock here (so a busy database is reported at once), then run the
    pipeline for one connection on a thread of its own."""
    from hub.errors import LockedError
    from hub.lock import DatabaseLock
    from hub.pipeline import run_pipeline
    from hub.store import Store

    store = Store(state.options.db_path)
    lock = DatabaseLock(store)
    try:
        lock.acquire()
    except LockedError:
        store.close()
        return False
    state.running[name] = clock.iso()

    def work() -> None:
        try:
            run_pipeline(
                store, state.options.config, connections=[name], transport=state.options.transport
            )
        except Exception as exc:  # noqa: BLE001 - the run records its own errors
            log.warning("web: run of %s failed: %s", name, exc)
        finally:
            state.running.pop(name, None)
            lock.release()
            store.close()

    threading.Thread(target=work, name=f"hub-web-run-{name}", daemon=True).start()
    return True


def routes() -> list[Route]:
    return [
        Route("/", overview),
        Route("/accounts", accounts),
        Route("/accounts.csv", accounts_csv),
        Route("/accounts.json", accounts_json),
        Route("/accounts/{account_id}", account),
        Route("/accounts/{account_id}/explain", explain_page),
        Route("/portfolio", portfolio),
        Route("/identity", identity),
        Route("/identity/link", identity_link, methods=["POST"]),
        Route("/identity/unlink", identity_unlink, methods=["POST"]),
        Route("/identity/forget", identity_forget, methods=["POST"]),
        Route("/runs", runs),
        Route("/runs/now", run_now, methods=["POST"]),
        Route("/runs/{run_id:int}", run_detail),
        Route("/settings", settings),
        Route("/favicon.ico", favicon),
    ]
