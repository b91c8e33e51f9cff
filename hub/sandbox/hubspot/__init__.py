"""Fake HubSpot CRM API (v3 objects, search, properties, owners, v4 associations, merge).

Faithful to the shapes in ``shared/specs/hubspot/NOTES.md`` and the official
``hubspot-api-client`` SDK models, so the SDK pointed at ``sandbox.serve()`` deserializes every
answer. What it models, and why:

* Objects ``companies``, ``contacts``, ``deals``, ``tasks`` (also addressed as ``0-2``, ``0-1``,
  ``0-3``, ``0-27``). Property values are strings or null; ``createdate`` /
  ``hs_lastmodifieddate`` (contacts: ``lastmodifieddate``) and ``hs_object_id`` are derived
  from the record, read-only, and every write bumps the modification time to the world clock
  (millisecond ISO ``Z`` text).
* A property registry (standard properties plus ones created through the properties API):
  writing an unknown property is a 400 ``PROPERTY_DOESNT_EXIST``, a bad option value a 400
  ``INVALID_OPTION``, a read-only one a 400 ``READ_ONLY_VALUE``. ``""`` (or null) clears.
* Lists page by id with ``paging.next.after`` and an absolute ``paging.next.link``; ``paging`` is
  absent on the last page. ``limit`` defaults to 10 and is clamped to 100.
* Search (``POST …/search``): up to 6 filter groups (OR) of up to 6 filters (AND), 18 in all;
  ``limit`` ≤ 200; ``after`` is an offset; **paging at or past ``search_cap`` (10,000) → 400**.
  Date properties compare numerically (ms epoch or ISO). Records are indexed by (modification
  time, id), so the incremental query ``hs_lastmodifieddate GTE t`` sorted ascending costs
  O(page) however large the store.
* Batch read/create/update/upsert/archive with ≤ 100 inputs; 200/201 or 207 with per-input
  ``errors`` (missing ids → ``OBJECT_NOT_FOUND``; the ``partial_207`` fault fails chosen inputs
  with a retriable-looking ``RATE_LIMITS`` error, params ``ids=[…]`` / ``indexes=[…]`` /
  ``fail=N`` (first N, default 1)).
* Merge: the merged-away record leaves lists and search, its id reads (and writes) as the
  survivor, the survivor's ``hs_merged_object_ids`` lists it (``a;b``), its domain joins the
  survivor's ``hs_additional_domains``, and its associations move over (the moved records
  count as modified).
* Property history (``propertiesWithHistory`` on list, read and batch read; a list page drops
  to 50 and a batch read to 50 inputs when asked): every change after creation is kept with
  its ``sourceType`` (``API`` for requests, ``CRM_UI``/``EMAIL``/``INTEGRATION`` for the world).
* Tasks default to ``NOT_STARTED``/``TODO``; ``hs_timestamp`` is required; completing one sets
  ``hs_task_completion_date``. Every answer carries a ``Date`` header from the world clock.
* Faults: the generic ones from ``hub.sandbox.base``; ``"400"``, ``"401"``, ``"403"``
  (``scopes=[…]`` → a ``MISSING_SCOPES`` body naming them), ``"404"``, ``"409"`` in HubSpot's
  error shape; ``partial_207`` as above.
* Rate limits (only when ``sandbox.enforce_limits``): ``burst_limit`` (100, settable to 190)
  per 10 s and ``daily_limit`` per world day; search has its own ``search_per_second`` (5) and
  sends no rate headers. Windows are scaled by ``sandbox.time_scale`` and the reported
  ``X-HubSpot-RateLimit-Interval-Milliseconds`` is scaled the same way. When limits are not
  enforced the headers report a fresh budget, so clients that pace on them stay fast.

The world: each ``World`` company's records are made on first use (``_Seeding._materialize``:
a list walk, a read or batch read by id; a search, a write or ``advance`` makes all the rest),
from a generator of the company's own and with ids in per-company blocks, so lists come in the
world's order and a company reads the same however it was made. A company has an owner,
lifecycle ``customer``/``other`` for churned, annual revenue, an ``nps_score`` for most (high
when healthy, low when at risk); 2–6 contacts (opt-outs more common when slipping or at risk), the won deal and the
renewal deal closing on ``Company.renewal_date``, a few CSM tasks, the CSM's touches and
tickets (``touches``); ``seed()`` applies the traps through the API's own code paths (company
6 merged into 5, company 8 archived; 3 and 4 share a domain).
``advance()`` unsubscribes contacts, moves churned companies' lifecycle, closes renewals near
their date (won, with next year's renewal opened, or lost when churned) and changes the odd
owner and NPS score.

Inspection for tests: ``writes`` (method, path, JSON body of every write request that reached a
handler, reads such as search and batch read excluded), ``snapshot()``, ``objects(type)``,
``get(type, id)``, ``associations(...)``, ``properties(type)``, ``complete_task(id)``,
``set_properties(...)`` (a CRM user edits a record), ``merge(a, b)``, ``archive(type, id)``;
``search_cap``, ``burst_limit``, ``daily_limit``, ``search_per_second`` are settable.
"""

from __future__ import annotations

from hub.sandbox.hubspot.api import HubSpotAPI
from hub.sandbox.hubspot.schema import iso_ms, parse_ms, to_ms

__all__ = ["HubSpotAPI", "iso_ms", "parse_ms", "to_ms"]
