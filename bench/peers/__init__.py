"""Peer adapters: the tools a user would pick instead of the hub, pointed at the same sandbox.

Each peer runs in its own process (``python bench/peers/run_peer.py NAME URL``), prints one
JSON line ``{"records": N, "seconds": S, ...}`` and exits, so a peer's imports, threads and
global settings never touch the harness or each other. The sandbox process counts the
requests each peer made (its per-API ``requests`` counters), so requests per record are
measured on the server side, the same way for every tool.

Peers:

- ``sdk-stripe`` / ``sdk-hubspot``: the official SDKs' auto-paging (the floor, and the
  baseline for ratios): ``stripe.StripeClient(key, base_addresses={"api": url})`` with
  ``v1.customers.list(...).auto_paging_iter()``; ``hubspot.Client.create(access_token=…,
  host=url)`` with ``crm.companies.get_all()``.
- ``dlt-stripe`` / ``dlt-hubspot``: dlt's ``rest_api`` source (``client.base_url`` = the
  sandbox) into DuckDB; Stripe paged by ``starting_after`` = the last record's id, HubSpot by
  ``paging.next.after``.
- ``singer-stripe`` / ``singer-hubspot``: the Singer ``tap-stripe`` and ``tap-hubspot``
  packages, each in its own throwaway venv (their pins conflict with each other and with the
  hub's), see ``bench/peers/singer_taps.py`` for what it takes to point them at a local URL.
"""

from __future__ import annotations
