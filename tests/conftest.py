"""Shared fixtures: a temp database, the example connector, clean plugin state."""

from __future__ import annotations

import pytest

from hub import clock
from hub.http.ratelimit import reset_shared_limiters
from hub.store import Store


@pytest.fixture(autouse=True, scope="session")
def _budgets_file(tmp_path_factory):
    # Shared rate budgets live in a per-user file; tests (and their subprocesses) use their own.
    import os

    os.environ["HUB_BUDGETS"] = str(tmp_path_factory.mktemp("budgets") / "budgets.sqlite")
    yield


@pytest.fixture(autouse=True)
def _clean_state():
    reset_shared_limiters()
    yield
    clock.set_source(None)
    reset_shared_limiters()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "hub.db")
    yield s
    s.close()


@pytest.fixture
def example_registry():
    """Registry with the test-only example connector registered like any plugin."""
    from hub.plugins import pm
    from hub.registry import get_registry, reset_registry
    from tests.plugins import example

    pm.register(example, name="example")
    reset_registry()
    yield get_registry()
    pm.unregister(name="example")
    reset_registry()


@pytest.fixture
def api_env():
    """Factory: a sandbox with one fake API seeded, the hub clock bound to its world, and an
    in-memory store. ``sandbox, api, store = api_env(StripeAPI, companies=40, seed=0)``."""
    from hub.sandbox.base import Sandbox
    from hub.sandbox.world import World

    stores = []

    def make(cls, *, companies: int = 40, seed: int = 0):
        reset_shared_limiters()
        sandbox = Sandbox(World(companies=companies, seed=seed))
        api = sandbox.add(cls(sandbox))
        api.seed()
        clock.set_source(sandbox.world.clock.now)
        stores.append(Store(":memory:"))
        return sandbox, api, stores[-1]

    yield make
    for s in stores:
        s.close()
