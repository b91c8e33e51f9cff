"""The Singer taps as peers: a throwaway venv per tap, discovery, a catalog, a timed sync.

``tap-stripe`` pins ``stripe==5.5.0`` and ``singer-python==6.0.1``; ``tap-hubspot`` pins
``singer-python==5.15.0`` and old ``attrs``/``backoff``. They conflict with each other and
with the hub's own ``stripe>=10``, so each gets its own venv under the bench work directory
(created on first use, reused after; ``pip install tap-stripe`` / ``tap-hubspot`` from PyPI).

Neither tap can be pointed at a local base URL by configuration; ``singer_shim.py`` says what
it patches and why. The tap writes Singer messages to a file (standing in for a target);
records are the ``RECORD`` lines, and the sandbox counts the requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TAPS = {"stripe": "tap-stripe", "hubspot": "tap-hubspot"}
STREAM = {"stripe": "customers", "hubspot": "contacts"}

NOT_CONFIGURABLE = {
    "stripe": "no base-URL setting: run through a shim that sets stripe.api_base, replaces the "
    "request timer hard-wired to api.stripe.com, answers its /v1/accounts start-up check and "
    "drops expand[]=data.sources/subscriptions/tax_ids (the sandbox cannot expand them)",
    "hubspot": "no base-URL setting (BASE_URL constant): run through a shim; its companies "
    "stream uses legacy /companies/v2 endpoints (plus one detail request per company) that "
    "the sandbox does not fake, so it is measured on contacts (CRM v3) instead",
}


class SingerUnavailable(Exception):
    """The tap could not be installed or run; the message says why (shown in the table)."""


def venv_python(workdir: Path, tap: str) -> Path:
    """The tap's venv interpreter, creating the venv and installing the tap if needed."""
    package = TAPS[tap]
    venv = workdir / "singer-venvs" / package
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    # The hub's interpreter makes the venv: the taps run on any Python 3.
    result = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True
    )
    if result.returncode:
        raise SingerUnavailable(
            f"cannot create a venv for {package}: {result.stderr.strip()[-200:]}"
        )
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", package],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise SingerUnavailable(f"pip install {package} failed: {' '.join(tail)[:200]}")
    marker.write_text(package)
    return python


def tap_version(python: Path, tap: str) -> str | None:
    out = subprocess.run(
        [
            str(python),
            "-c",
            f"from importlib.metadata import version; print(version({TAPS[tap]!r}))",
        ],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def _config(tap: str, start_date: str) -> dict[str, Any]:
    if tap == "stripe":
        return {
            "client_secret": "sk_test_hubsandbox",
            "account_id": "acct_sandbox",
            "start_date": start_date,
            "request_timeout": 60,
        }
    return {"api_key": "pat-sandbox-hub", "start_date": start_date, "request_timeout": 60}


def _select(catalog: dict[str, Any], stream: str) -> dict[str, Any]:
    """Keep only ``stream`` and mark it (and all its fields) selected."""
    streams = [s for s in catalog["streams"] if s["tap_stream_id"] == stream]
    if not streams:
        raise SingerUnavailable(f"discovery found no {stream!r} stream")
    for entry in streams:
        for item in entry["metadata"]:
            if item["breadcrumb"] == [] or item["metadata"].get("inclusion") != "unsupported":
                item["metadata"]["selected"] = True
    return {"streams": streams}


def run_tap(tap: str, url: str, workdir: Path, start_date: str, timeout: float) -> dict[str, Any]:
    """Discover, select the stream, sync; returns records, seconds and the tap's version."""
    python = venv_python(workdir, tap)
    run_dir = workdir / f"singer-{tap}"
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    config_path.write_text(json.dumps(_config(tap, start_date)))
    shim = [str(python), str(HERE / "singer_shim.py"), tap, url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    discovered = subprocess.run(
        [*shim, "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if discovered.returncode:
        raise SingerUnavailable(f"discovery failed: {_last_error(discovered.stderr)}")
    catalog = _select(json.loads(discovered.stdout), STREAM[tap])
    catalog_path = run_dir / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    flag = "--catalog" if tap == "stripe" else "--properties"
    out_path, err_path = run_dir / "out.jsonl", run_dir / "err.log"
    started = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.run(
            [*shim, "--config", str(config_path), flag, str(catalog_path)],
            stdout=out,
            stderr=err,
            timeout=timeout,
            env=env,
        )
    wall = time.perf_counter() - started
    stderr = err_path.read_text()
    if proc.returncode:
        raise SingerUnavailable(f"sync failed: {_last_error(stderr)}")
    seconds = wall
    for line in stderr.splitlines():
        if line.startswith("BENCH_SECONDS "):
            seconds = float(line.split()[1])
    records = 0
    with out_path.open() as fh:
        for line in fh:
            if line.startswith('{"type": "RECORD"') or line.startswith('{"type":"RECORD"'):
                records += 1
    return {
        "records": records,
        "seconds": round(seconds, 3),
        "version": tap_version(python, tap),
        "stream": STREAM[tap],
    }


def _last_error(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and "BENCH_SECONDS" not in ln]
    for line in reversed(lines):
        if "CRITICAL" in line or "Error" in line or "Exception" in line:
            return line.strip()[-240:]
    return (lines[-1] if lines else "no output").strip()[-240:]
