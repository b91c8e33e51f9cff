"""A small demo database for the web app's tests, built once per test session and copied."""

from __future__ import annotations

import shutil
from pathlib import Path

_BUILT: dict[str, Path] = {}


def demo_database(tmp_path_factory, target: Path) -> Path:
    """Copy of a 40-company, two-week demo database at ``target`` (built on first use)."""
    if "db" not in _BUILT:
        from hub.demo import run_demo

        path = tmp_path_factory.mktemp("web-demo") / "demo.db"
        run_demo(str(path), companies=40, seed=7, weeks=2)
        _BUILT["db"] = path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_BUILT["db"], target)
    return target
