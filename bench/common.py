"""Shared pieces of the benchmark suite: result sections, goals, machine info, helpers.

A benchmark is a function ``run(opts) -> Section``. A ``Section`` is one results table
(columns and rows of plain values), the goals it checks (figure, target, met or missed) and
notes that say how the figures were made. ``bench/run.py`` renders sections as markdown and
JSON; nothing here measures anything by itself.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
NOT_AVAILABLE = "not available"


@dataclass
class Options:
    """How big and how thorough a run is; chosen by ``--smoke``/``--quick``/full."""

    mode: str = "quick"  # smoke | quick | full
    seed: int = 7
    workdir: Path = field(default_factory=lambda: Path("/tmp/hub-bench"))
    peers: bool = True  # run the peer tools (dlt, Singer taps, SDKs) where installed

    @property
    def smoke(self) -> bool:
        return self.mode == "smoke"

    @property
    def quick(self) -> bool:
        return self.mode != "full"

    def pick(self, smoke: Any, quick: Any, full: Any) -> Any:
        """The value for this run's mode."""
        return {"smoke": smoke, "quick": quick, "full": full}[self.mode]


@dataclass
class Goal:
    """One target from the issues: ``value`` compared with ``target`` (``op`` is <, <=, >=, ==)."""

    name: str
    value: float | int | None
    target: float | int
    op: str
    unit: str = ""
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        v, t = self.value, self.target
        return {"<": v < t, "<=": v <= t, ">=": v >= t, "==": v == t}[self.op]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class Section:
    """The results of one benchmark: a table, goals and notes."""

    name: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    status: str = "ok"  # ok | not available | error

    def add(self, **row: Any) -> dict[str, Any]:
        for key in row:
            if key not in self.columns:
                self.columns.append(key)
        self.rows.append(row)
        return row

    def goal(self, name: str, value: Any, target: Any, op: str, unit: str = "", note: str = ""):
        self.goals.append(Goal(name, value, target, op, unit, note))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "columns": self.columns,
            "rows": self.rows,
            "goals": [g.as_dict() for g in self.goals],
            "notes": self.notes,
        }


def unavailable(name: str, title: str, reason: str) -> Section:
    """A section for a benchmark whose pieces are missing (says which, never skips silently)."""
    section = Section(name, title, status=NOT_AVAILABLE)
    section.notes.append(f"{NOT_AVAILABLE}: {reason}")
    return section


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """``with timer() as t: ...`` then ``t["s"]`` holds the wall seconds."""
    out = {"s": 0.0}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - start


def rate(count: float, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return round(value / base, 2)


def fmt(value: Any) -> str:
    """A table cell: thousands separators for big numbers, short floats, '–' for None."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    packages = {
        name: package_version(name)
        for name in (
            "cs-hub",
            "httpx",
            "sqlite-utils",
            "pydantic",
            "dlt",
            "duckdb",
            "stripe",
            "hubspot-api-client",
            "zenpy",
        )
    }
    commit = None
    with suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    return {
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {k: v for k, v in packages.items() if v},
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process (Linux reports KiB)."""
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except (ImportError, OSError):
        return None


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
