"""The Singer taps as peers: a throwaway venv per tap, discovery, a catalog, a timed sync.

Three taps, each in its own venv under the bench work directory (created on first use,
reused after; ``pip install`` from PyPI): ``tap-stripe`` (singer-io; pins ``stripe==5.5.0``
and ``singer-python==6.0.1``), ``tap-hubspot`` (singer-io; pins ``singer-python==5.15.0``)
and ``meltano-tap-hubspot`` (MeltanoLabs, on the Meltano Singer SDK). Their pins conflict with
each other and with the hub's own ``stripe``, hence the venvs.

None has a base-URL setting; ``singer_shim.py`` rebinds the vendor's origin to the sandbox
and patches nothing else. The tap writes Singer messages to a file (standing in for a
target). ``MODELLED`` lists, per tap, every stream it offers that the fake models: all of
them are selected, and each is compared with what the world holds (records counted by key:
tap-stripe re-emits a record for each of its update events, so raw messages exceed keys).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TAPS = ("tap-stripe", "tap-hubspot", "meltano-tap-hubspot")
API = {"tap-stripe": "stripe", "tap-hubspot": "hubspot", "meltano-tap-hubspot": "hubspot"}

# Every stream each tap offers that the fake models (the others stay unselected: plans,
# payouts, forms, campaigns… have no records in the fake).
MODELLED = {
    "tap-stripe": [
        "customers",
        "subscriptions",
        "subscription_items",
        "invoices",
        "invoice_line_items",
        "charges",
        "events",
    ],
    "tap-hubspot": [
        "companies",
        "contacts",
        "contacts_by_company",
        "deals",
        "deal_pipelines",
        "engagements",
        "owners",
        "tickets",
    ],
    "meltano-tap-hubspot": [
        "companies",
        "contacts",
        "deals",
        "deal_pipelines",
        "tickets",
        "ticket_pipelines",
        "owners",
        "calls",
        "emails",
        "meetings",
        "notes",
        "tasks",
    ],
}

NOT_CONFIGURABLE = (
    "none of the three Singer taps has a base-URL setting: `bench/peers/singer_shim.py` "
    "rebinds the vendor's origin (api.stripe.com, api.hubapi.com) to the sandbox in "
    "`requests`' transport and patches nothing else"
)


class SingerUnavailable(Exception):
    """The tap could not be installed or run; the message says why (shown in the table)."""


def venv_python(workdir: Path, tap: str) -> Path:
    """The tap's venv interpreter, creating the venv and installing the tap if needed."""
    venv = workdir / "singer-venvs" / tap
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
        raise SingerUnavailable(f"cannot create a venv for {tap}: {result.stderr.strip()[-200:]}")
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", tap],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise SingerUnavailable(f"pip install {tap} failed: {' '.join(tail)[:200]}")
    marker.write_text(tap)
    return python


def tap_version(python: Path, tap: str) -> str | None:
    out = subprocess.run(
        [str(python), "-c", f"from importlib.metadata import version; print(version({tap!r}))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def _config(tap: str, start_date: str, account_id: str | None) -> dict[str, Any]:
    from hub.sandbox.world import CREDENTIALS

    if tap == "tap-stripe":
        return {
            "client_secret": CREDENTIALS["stripe"]["api_key"],
            "account_id": account_id,
            "start_date": start_date,
            "request_timeout": 60,
        }
    token = CREDENTIALS["hubspot"]["access_token"]
    if tap == "tap-hubspot":
        return {"api_key": token, "start_date": start_date, "request_timeout": 60}
    return {"access_token": token, "start_date": start_date}


def _account_id(url: str) -> str:
    """tap-stripe checks ``GET /v1/accounts/{account_id}`` at start: ask the sandbox its id."""
    import httpx

    from hub.sandbox.world import CREDENTIALS

    key = CREDENTIALS["stripe"]["api_key"]
    return httpx.get(f"{url}/v1/account", auth=(key, ""), timeout=30).json()["id"]


def _select(catalog: dict[str, Any], streams: list[str]) -> dict[str, Any]:
    """Keep only ``streams`` and mark each (and all its fields) selected."""
    chosen = [s for s in catalog["streams"] if s["tap_stream_id"] in streams]
    missing = set(streams) - {s["tap_stream_id"] for s in chosen}
    if missing:
        raise SingerUnavailable(f"discovery found no {', '.join(sorted(missing))} stream")
    for entry in chosen:
        for item in entry["metadata"]:
            if item["breadcrumb"] == [] or item["metadata"].get("inclusion") != "unsupported":
                item["metadata"]["selected"] = True
    return {"streams": chosen}


def run_tap(
    tap: str,
    url: str,
    workdir: Path,
    start_date: str,
    timeout: float,
    streams: list[str] | None = None,
) -> dict[str, Any]:
    """Discover, select ``streams`` (default: every modelled one), sync.

    Returns ``records`` (RECORD messages), ``seconds``, ``cpu_s`` (the tap's own), ``version``
    and per stream
    ``{"messages", "records"}`` (records = distinct primary keys)."""
    python = venv_python(workdir, tap)
    run_dir = workdir / f"singer-{tap}"
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    account = _account_id(url) if tap == "tap-stripe" else None
    config_path.write_text(json.dumps(_config(tap, start_date, account)))
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
    catalog = _select(json.loads(discovered.stdout), streams or MODELLED[tap])
    catalog_path = run_dir / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    # singer-io tap-hubspot still reads its catalog from the older --properties flag.
    flag = "--properties" if tap == "tap-hubspot" else "--catalog"
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
    seconds, cpu = wall, None
    for line in stderr.splitlines():
        if line.startswith("BENCH_SECONDS "):
            seconds = float(line.split()[1])
        elif line.startswith("BENCH_CPU "):
            cpu = float(line.split()[1])
    per_stream = count_records(out_path)
    return {
        "records": sum(s["messages"] for s in per_stream.values()),
        "seconds": round(seconds, 3),
        "cpu_s": cpu,
        "version": tap_version(python, tap),
        "streams": per_stream,
    }


def count_records(path: Path) -> dict[str, dict[str, int]]:
    """RECORD messages and distinct primary keys (from the SCHEMA messages) per stream."""
    keys: dict[str, list[str]] = {}
    messages: Counter[str] = Counter()
    seen: dict[str, set[str]] = defaultdict(set)
    with path.open() as fh:
        for line in fh:
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if msg.get("type") == "SCHEMA":
                keys[msg["stream"]] = msg.get("key_properties") or []
            elif msg.get("type") == "RECORD":
                stream, record = msg["stream"], msg["record"]
                messages[stream] += 1
                names = keys.get(stream) or sorted(record)
                seen[stream].add(json.dumps([record.get(k) for k in names], default=str))
    return {s: {"messages": messages[s], "records": len(seen[s])} for s in sorted(messages)}


def _last_error(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and "BENCH_SECONDS" not in ln]
    for line in reversed(lines):
        if "CRITICAL" in line or "Error" in line or "Exception" in line:
            return line.strip()[-240:]
    return (lines[-1] if lines else "no output").strip()[-240:]
