"""Run one in-venv peer against a sandbox URL and print ``{"records", "seconds", ...}`` as JSON.

Usage: ``python bench/peers/run_peer.py sdk-stripe|sdk-hubspot|dlt-stripe|dlt-hubspot URL
WORKDIR``. The timer covers the listing itself (for dlt: extract, normalize and load into
DuckDB), not the interpreter start-up or imports. The Singer taps run from their own venvs
(``bench/peers/singer_taps.py``), not from here.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# Never phone home: dlt sends anonymous telemetry unless told not to, and this machine has
# no network but the package registries.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DLT_TELEMETRY", "false")

STRIPE_KEY = "sk_test_hubsandbox"
HUBSPOT_TOKEN = "pat-sandbox-hub"


def sdk_stripe(url: str, workdir: Path) -> dict[str, Any]:
    import stripe

    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": url}, max_network_retries=0)
    started = time.perf_counter()
    records = 0
    for _customer in client.v1.customers.list(params={"limit": 100}).auto_paging_iter():
        records += 1
    return {"records": records, "seconds": time.perf_counter() - started}


def sdk_hubspot(url: str, workdir: Path) -> dict[str, Any]:
    import hubspot

    client = hubspot.Client.create(access_token=HUBSPOT_TOKEN, host=url)
    started = time.perf_counter()
    # get_all pages with limit=100 and paging.next.after until the end.
    records = len(client.crm.companies.get_all())
    return {"records": records, "seconds": time.perf_counter() - started}


def sdk_hubspot_contacts(url: str, workdir: Path) -> dict[str, Any]:
    import hubspot

    client = hubspot.Client.create(access_token=HUBSPOT_TOKEN, host=url)
    started = time.perf_counter()
    records = len(client.crm.contacts.get_all())
    return {"records": records, "seconds": time.perf_counter() - started}


def _dlt_run(name: str, config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    # A fresh directory per run: dlt retries packages left pending by an earlier run.
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{name}",
        pipelines_dir=str(workdir / "pipelines"),
        destination=dlt.destinations.duckdb(str(workdir / f"peer_{name}.duckdb")),
        dataset_name=f"raw_{name}",
        progress="log" if os.environ.get("BENCH_VERBOSE") else None,
    )
    source = rest_api_source(config)
    started, cpu = time.perf_counter(), time.process_time()
    pipeline.run(source, write_disposition="replace")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    trace = pipeline.last_trace
    steps = {step.step: step.finished_at - step.started_at for step in trace.steps}
    counts = pipeline.last_trace.last_normalize_info.row_counts
    records = sum(v for k, v in counts.items() if not k.startswith("_dlt") and "__" not in k)
    return {
        "records": records,
        "seconds": seconds,
        "cpu_s": cpu,
        "extract_s": round(steps["extract"].total_seconds(), 3) if "extract" in steps else None,
        "tables": {k: v for k, v in counts.items() if not k.startswith("_dlt")},
    }


def dlt_stripe(url: str, workdir: Path) -> dict[str, Any]:
    config = {
        "client": {"base_url": url + "/", "auth": {"type": "bearer", "token": STRIPE_KEY}},
        "resources": [
            {
                "name": "customers",
                "endpoint": {
                    "path": "v1/customers",
                    "params": {"limit": 100},
                    "data_selector": "data",
                    # Stripe's next page starts after the last id of this one; has_more ends it.
                    "paginator": {
                        "type": "cursor",
                        "cursor_path": "data[-1].id",
                        "cursor_param": "starting_after",
                        "has_more_path": "has_more",
                    },
                },
            }
        ],
    }
    return _dlt_run("stripe", config, workdir)


def dlt_hubspot(url: str, workdir: Path) -> dict[str, Any]:
    config = {
        "client": {"base_url": url + "/", "auth": {"type": "bearer", "token": HUBSPOT_TOKEN}},
        "resources": [
            {
                "name": "companies",
                "endpoint": {
                    "path": "crm/v3/objects/companies",
                    "params": {"limit": 100},
                    "data_selector": "results",
                    "paginator": {
                        "type": "cursor",
                        "cursor_path": "paging.next.after",
                        "cursor_param": "after",
                    },
                },
            }
        ],
    }
    return _dlt_run("hubspot", config, workdir)


RUNNERS = {
    "sdk-stripe": sdk_stripe,
    "sdk-hubspot": sdk_hubspot,
    "sdk-hubspot-contacts": sdk_hubspot_contacts,
    "dlt-stripe": dlt_stripe,
    "dlt-hubspot": dlt_hubspot,
}


def main() -> None:
    name, url, workdir = sys.argv[1], sys.argv[2].rstrip("/"), Path(sys.argv[3])
    out = RUNNERS[name](url, workdir)
    out["seconds"] = round(out["seconds"], 3)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
