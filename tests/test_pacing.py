"""The hub's own pacing provokes no 429 when the sandbox enforces the real budgets.

HubSpot and Zendesk have their own pacing tests (with scaled windows); here Stripe and
BuiltWith run at real time against the real budgets, with the world large enough that a
client without pacing would exceed them.
"""

from __future__ import annotations

import time

from hub.http.ratelimit import reset_shared_limiters
from hub.sandbox.base import Sandbox
from hub.sandbox.builtwith import BuiltWithAPI
from hub.sandbox.stripe import StripeAPI
from hub.sandbox.world import CREDENTIALS, World
from hub.store import Store
from hub.sync import sync_connection


def make(cls, companies):
    sandbox = Sandbox(World(companies=companies, seed=4), enforce_limits=True)
    api = sandbox.add(cls(sandbox))
    api.seed()
    return sandbox, api


def test_stripe_stays_under_25_per_second(tmp_path):
    from connectors.stripe import StripeConnector

    reset_shared_limiters()
    sandbox, api = make(StripeAPI, 150)
    connector = StripeConnector({"api_key": CREDENTIALS["stripe"]["api_key"]}, connection="stripe")
    started = time.monotonic()
    results = sync_connection(Store(tmp_path / "hub.db"), connector, transport=sandbox.transport())
    elapsed = time.monotonic() - started
    requests = sum(r.requests for r in results)
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert requests > 25, "the world is too small to test pacing"
    assert api.status_counts[429] == 0
    # Paced, not throttled to a crawl (loose: CI machines are busy).
    assert requests / elapsed <= 25 * 1.05 + 1
    assert requests / max(elapsed, 1.0) >= 25 * 0.3 or elapsed < 1.2


def test_builtwith_stays_under_its_budget(tmp_path):
    from connectors.builtwith import BuiltWithConnector

    reset_shared_limiters()
    sandbox, api = make(BuiltWithAPI, 260)
    domains = [c.domain for c in sandbox.world.companies]
    connector = BuiltWithConnector(
        {"api_key": CREDENTIALS["builtwith"]["api_key"], "domains": domains}, connection="bw"
    )
    results = sync_connection(Store(tmp_path / "hub.db"), connector, transport=sandbox.transport())
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert sum(r.requests for r in results) >= 16
    assert api.status_counts[429] == 0
