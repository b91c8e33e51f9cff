"""The pipeline: sync → map → health → playbooks → push, as one recorded run.

Every step is a plain function over the database and can be run alone (``hub sync``,
``hub map``, ``hub health``, ``hub playbooks``/``hub push``). A failed connection does not stop
the others: its data is simply older, and its run record says why. A failed step is recorded
and the later steps still run on what is there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.config import Config
from hub.errors import HubError
from hub.store import Store

log = logging.getLogger("hub.pipeline")

STEPS = ("sync", "map", "health", "playbooks", "push")
# A step that reports one of these did not do all it should: the run fails (exit 1).
FAILED_STATUSES = ("error", "partial")


@dataclass
class PipelineResult:
    """What each step returned (or the error it raised)."""

    steps: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    failed_connections: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed_steps

    @property
    def failed_steps(self) -> list[str]:
        """What failed, in pipeline order: ``sync of NAME`` per failed connection, then each
        step that raised or reported ``error``/``partial`` (e.g. a push with failed writes)."""
        failed = [f"sync of {name}" for name in self.failed_connections]
        failed += [
            step
            for step in STEPS
            if step in self.errors
            or (step != "sync" and step in self.steps and self._status(step) in FAILED_STATUSES)
        ]
        return failed

    def _status(self, step: str) -> str:
        """A step's own status; a result without one (map) is ``partial`` when it has errors."""
        result = self.steps[step]
        return getattr(result, "status", None) or (
            "partial" if getattr(result, "errors", None) else "ok"
        )

    def step_rows(self) -> list[dict[str, Any]]:
        """Per step: status, its main count and a one-line summary (for cron mail and
        ``hub run --once --json``)."""
        rows = []
        for step in STEPS:
            if step in self.errors:
                rows.append(
                    {"step": step, "status": "error", "records": 0, "summary": self.errors[step]}
                )
            elif step in self.steps:
                records, summary = _describe(step, self.steps[step])
                status = "ok"
                if step == "sync" and self.failed_connections:
                    status = "partial"
                elif self._status(step) != "ok":
                    status = self._status(step)
                rows.append(
                    {"step": step, "status": status, "records": records, "summary": summary}
                )
        return rows


_libc: Any = None
_M_ARENA_MAX = -8  # mallopt(3)
MALLOC_ARENAS = 2


def _glibc() -> Any:
    """The C library when it is glibc (whose allocator the two functions below tune)."""
    global _libc
    if _libc is None:
        _libc = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            with contextlib.suppress(OSError):
                _libc = ctypes.CDLL("libc.so.6")
    return _libc


def release_memory() -> None:
    """Hand the C heap's free pages back to the system after a step (glibc only).

    Each step frees what it decoded, but glibc keeps freed pages in its arenas, so RSS
    would stay at the largest step's high-water mark for the life of a ``hub run`` process.
    ``malloc_trim(0)`` returns them."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)


def limit_malloc_arenas() -> None:
    """At most ``MALLOC_ARENAS`` C heaps (glibc only; before the sync starts its threads).

    glibc gives threads heaps of their own (up to eight per core): each sync thread's heap
    grows to the most that thread ever held and keeps its free pages apart from the others'.
    The threads take turns on the interpreter lock anyway, so sharing two heaps costs them
    nothing and keeps the process's peak near what it really holds at once."""
    libc = _glibc()
    if libc:
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def _describe(step: str, result: Any) -> tuple[int, str]:
    """The count and the words for one step's result (each step returns its own type)."""
    if step == "sync":
        from hub.sync import summarize

        t = summarize(result)
        return t["records"], (
            f"{t['streams']} streams, {t['records']:,} records ({t['changed']:,} new or "
            f"changed), {t['requests']:,} requests, {t['failed']} failed"
        )
    if step == "map":
        rows = getattr(result, "rows", 0)
        what = f"{rows:,} new raw rows, {result.events:,} events" if rows else "nothing new"
        return result.events if rows else 0, (
            f"{what}, {result.accounts:,} accounts, {result.unmatched:,} unmatched"
        )
    if step == "health":
        bands = getattr(result, "bands", {}) or {}
        words = ", ".join(f"{b} {n}" for b, n in sorted(bands.items())) or "no bands"
        return getattr(
            result, "accounts", 0
        ), f"{getattr(result, 'accounts', 0):,} scored ({words})"
    if step == "playbooks":
        opened = len(getattr(result, "opened", []) or [])
        note = result.note() if hasattr(result, "note") else ""
        return opened, note or f"{opened} tasks opened"
    if step == "push":
        summary = result.summary() if hasattr(result, "summary") else ""
        return getattr(result, "writes", 0), summary
    return getattr(result, "records", 0), ""


def run_pipeline(
    store: Store,
    config: Config,
    *,
    connections: list[str] | None = None,
    streams: list[str] | None = None,
    steps: tuple[str, ...] = STEPS,
    transport: httpx.BaseTransport | None = None,
    dry_run: bool = False,
    full_refresh: bool = False,
    sync_progress: Callable[..., None] | None = None,
    on_step: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> PipelineResult:
    """Run the chosen steps in order; never raises for one step's failure (``HubError``)."""
    started = time.perf_counter()
    result = PipelineResult()
    stop = stop or threading.Event()
    run_id = store.start_run("pipeline")
    for step in STEPS:
        if step not in steps or stop.is_set():
            continue
        if on_step:
            on_step(step)
        try:
            result.steps[step] = _run_step(
                step,
                store,
                config,
                connections,
                streams,
                transport,
                dry_run,
                full_refresh,
                sync_progress,
                stop,
            )
        except HubError as exc:
            result.errors[step] = str(exc)
            log.warning("step %s failed: %s", step, exc)
        except Exception as exc:  # noqa: BLE001 - a bug in one step must not stop the schedule
            result.errors[step] = f"internal error: {type(exc).__name__}: {exc}"
            log.warning("step %s crashed: %s", step, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        release_memory()
        if step == "sync" and step in result.steps:
            result.failed_connections = sorted(
                {
                    n
                    for n, rs in result.steps["sync"].items()
                    if any(r.status == "error" for r in rs)
                }
            )
    # Health, playbooks and push write after the map's checkpoint: fold their WAL back too, so
    # the database between runs is one file of its real size.
    store.checkpoint()
    result.duration_s = time.perf_counter() - started
    failed = result.failed_steps
    # Only connections failed: the rest ran on their older data ("partial").
    status = (
        "ok"
        if not failed
        else (
            "partial" if failed == [f"sync of {n}" for n in result.failed_connections] else "error"
        )
    )
    notes = []
    if result.failed_steps:
        notes.append(f"failed: {', '.join(result.failed_steps)}")
    if result.failed_connections:
        notes.append(
            f"connections with errors (their data is older): {', '.join(result.failed_connections)}"
        )
    store.finish_run(
        run_id,
        status=status,
        error="; ".join(f"{k}: {v}" for k, v in result.errors.items()) or None,
        note="; ".join(notes) or None,
        duration_s=result.duration_s,
    )
    return result


def _run_step(
    step, store, config, connections, streams, transport, dry_run, full_refresh, sync_progress, stop
) -> Any:
    if step == "sync":
        from hub.sync import sync_all

        return sync_all(
            store,
            config,
            connections,
            streams=streams,
            transport=transport,
            progress=sync_progress,
            stop=stop,
            full_refresh=full_refresh,
        )
    if step == "map":
        from hub.timeline import run_mappings

        return run_mappings(store, config)
    if step == "health":
        from hub.health import compute_health

        return compute_health(store, config)
    if step == "playbooks":
        from hub.playbooks import run_playbooks

        return run_playbooks(store, config)
    if step == "push":
        from hub.push import run_push

        return run_push(store, config, dry_run=dry_run, transport=transport)
    raise ValueError(step)
