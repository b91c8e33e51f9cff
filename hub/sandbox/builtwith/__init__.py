"""Fake BuiltWith Domain API: technology profiles of the world's company domains.

Facts followed (see ``shared/specs/builtwith/README.md``): ``GET /v{N}/api.json?KEY=&LOOKUP=``
with up to 16 comma-separated domains; the version segment moves (v20…v26 seen), so any
``N >= 20`` is served (``/v1/…`` belongs to Stripe). Errors come back in a top-level ``Errors``
array, often with HTTP 200: a key that is not a GUID (-2, 200), out of credits (-3, 200), an
invalid or unknown root domain (-8, one item per domain beside the other domains' Results). A
GUID that is not the account's key answers 401 with the same body. ``/whoamiv1/api.json`` and
``/usagev2/api.json`` cost no credits. Every authenticated answer carries
``X-API-CREDITS-AVAILABLE`` / ``-USED`` / ``-REMAINING``.

Choices where the docs are silent (documented so the connector does not depend on luck):
- each domain that returns a Result costs 1 credit; per-domain errors cost nothing; a
  repeated domain in one LOOKUP is answered and charged once;
- when credits run out part-way through a batch, the domains that fit are answered and the
  rest get a per-domain ``-3`` item; with no credits at all the whole call is one ``-3``;
- more than 16 domains: 200 with one ``-7`` item and no Results (nothing charged);
- error items are ``{"Lookup": <domain or null>, "Message": ..., "Code": <int or null>}``;
- only ``api.json`` is rendered; ``api.xml``/``api.csv`` answer ``-1`` (unsupported here).

Data model: each domain's profile is generated lazily on first use from
``rng_for(seed, "builtwith", domain)`` and the company's facts as they were at seed time, so
building a 100k world is only an index of domains. A profile holds technologies as day numbers
(``first`` seen, ``gone`` = first day no longer seen). ``LastDetected`` is derived from the
clock: each domain is re-indexed every 1–3 days, so a current technology's ``LastDetected``
is always within the last 3 days ("current" for the mapping = within ~7 days), and a removed
one's stops at the last index before it went. ``advance()`` materialises only the few
profiles it changes (widget removed, competitor added, widget on a new subdomain).
"""

from __future__ import annotations

from hub.sandbox.builtwith.api import BuiltWithAPI
from hub.sandbox.builtwith.catalogue import MAX_LOOKUP
from hub.sandbox.builtwith.records import Profile, Tech, _day, normalise_domain

__all__ = ["BuiltWithAPI", "MAX_LOOKUP", "Profile", "Tech", "_day", "normalise_domain"]
