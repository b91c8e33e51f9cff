"""What the served world holds, per Singer stream: the "world records" column of the taps table.

Runs inside the sandbox's process (``bench/sandbox_proc.py``, command ``world``), reading the
fakes' own stores, so the count is the ground truth the tap is compared with, not another
client's reading of the API. Keys are ``TAP.stream`` for every stream a tap selects that the
fake models (``MODELLED`` in ``singer_taps.py``).
"""

from __future__ import annotations

import time
from typing import Any

# tap-stripe reads events of the last 30 days only, minus its 600 s "lookback" window.
_EVENTS_WINDOW_S = 30 * 86400 + 600
_ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks")


def world_counts(sandbox: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    stripe = sandbox.apis["stripe"]
    store = stripe._store
    out["tap-stripe.customers"] = len(store["customer"])
    out["tap-stripe.subscriptions"] = len(store["subscription"])
    out["tap-stripe.subscription_items"] = sum(
        len(stripe._render("subscription", s, False)["items"]["data"])
        for s in store["subscription"].values()
    )
    out["tap-stripe.invoices"] = len(store["invoice"])
    out["tap-stripe.invoice_line_items"] = sum(
        len(stripe._render("invoice", i, False)["lines"]["data"]) for i in store["invoice"].values()
    )
    out["tap-stripe.charges"] = len(store["charge"])
    since = time.time() - _EVENTS_WINDOW_S
    out["tap-stripe.events"] = sum(1 for e in store["event"].values() if e.created >= since)

    hubspot = sandbox.apis["hubspot"]
    hubspot._materialize_all()  # companies are made on first use; count them all
    live = {t: len(ids) for t, ids in hubspot._active.items()}
    owners = len(sandbox.world.owners)
    pairs = sum(
        len(hubspot._links("companies", c, "contacts")) for c in hubspot._active["companies"]
    )
    for tap in ("tap-hubspot", "meltano-tap-hubspot"):
        for t in ("companies", "contacts", "deals", "tickets"):
            out[f"{tap}.{t}"] = live[t]
        out[f"{tap}.owners"] = owners
        out[f"{tap}.deal_pipelines"] = 1
    out["tap-hubspot.engagements"] = sum(live[t] for t in _ENGAGEMENTS)
    out["tap-hubspot.contacts_by_company"] = pairs
    for t in _ENGAGEMENTS:
        out[f"meltano-tap-hubspot.{t}"] = live[t]
    out["meltano-tap-hubspot.ticket_pipelines"] = 1
    return out
