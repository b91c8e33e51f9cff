"""The standard connector test suite (the idea of singer-sdk's ``get_tap_test_class``).

Subclass ``ConnectorTests`` in your plugin's tests, point it at your connector and your fake
API, and pytest collects a dozen behaviour tests: streams are declared properly, a full sync
loads every stream, a second sync with no upstream change makes the minimum requests and
writes nothing, an incremental sync picks up only the changes, bookmarks never go
backwards, a failure mid-stream resumes with no gap and no duplicate, 429 and 5xx are
retried, 401/403 give up at once with a clear message, and no secret reaches the logs::

    from hub.testing import ConnectorTests

    class TestAcme(ConnectorTests):
        connector_class = AcmeConnector
        settings = {"api_key": "test-key", "base_url": "https://acme.test"}
        bad_settings = {"api_key": "wrong-key", "base_url": "https://acme.test"}

        def make_world(self):            # a fresh fake per test
            return AcmeFake(records=250)

        def transport(self, world):      # an httpx transport answering from the fake
            return httpx.MockTransport(world.handle)

        def change(self, world):         # change something upstream
            world.touch(5)

        def inject(self, world, kind, *, count=1, after=0, path=None):
            world.fail_next(kind, count=count, after=after)

The built-in connectors run it against ``hub.sandbox`` through ``SandboxConnectorTests``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

try:
    import pytest
except ImportError:  # a plugin installed without its test extra
    raise ImportError(
        "hub.testing needs pytest: pip install 'cs-hub[test]' (or pytest) in your test environment"
    ) from None

from hub.connector import Connector
from hub.http.ratelimit import reset_shared_limiters
from hub.store import Store
from hub.sync import StreamResult, sync_connection


def _no_sleep(seconds: float) -> None:
    return None


class ConnectorTests:
    """Behaviour tests every connector should pass. Override the hooks below."""

    connector_class: ClassVar[type[Connector] | None] = None
    settings: ClassVar[dict[str, Any]] = {}
    bad_settings: ClassVar[dict[str, Any] | None] = None
    connection: ClassVar[str] = "under_test"
    # Streams that must come back non-empty from the fake on a full sync.
    expect_records: ClassVar[set[str] | None] = None
    # Requests a no-change re-sync may make in total (default: one per stream).
    max_noop_requests: ClassVar[int | None] = None
    # Which stream to break mid-way in the resume test, and the path regex its requests hit.
    resume_stream: ClassVar[str | None] = None
    resume_path: ClassVar[str | None] = None

    # -- hooks ------------------------------------------------------------------------------

    def make_world(self) -> Any:
        raise NotImplementedError

    def transport(self, world: Any) -> Any:
        raise NotImplementedError

    def change(self, world: Any) -> None:
        raise NotImplementedError

    def inject(
        self, world: Any, kind: str, *, count: int = 1, after: int = 0, path: str | None = None
    ) -> None:
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------

    def connector(self, settings: dict[str, Any] | None = None) -> Connector:
        assert self.connector_class is not None, "set connector_class"
        return self.connector_class(dict(settings or self.settings), connection=self.connection)

    def sync(
        self, store: Store, world: Any, settings: dict[str, Any] | None = None
    ) -> dict[str, StreamResult]:
        reset_shared_limiters()
        results = sync_connection(
            store, self.connector(settings), transport=self.transport(world), sleep=_no_sleep
        )
        return {r.stream: r for r in results}

    def snapshot(self, store: Store) -> dict[str, list[tuple[str, str, int]]]:
        out = {}
        for table in store.raw_tables(self.connection):
            out[table] = sorted(
                (r["id"], str(r["data"]), int(r["deleted"])) for r in store.raw_rows(table)
            )
        return out

    @pytest.fixture
    def hub_store(self, tmp_path):
        store = Store(tmp_path / "suite.db")
        yield store
        store.close()

    # -- the suite --------------------------------------------------------------------------

    def test_declares_streams(self):
        cls = self.connector_class
        assert cls is not None and cls.name, "connector needs a name"
        names = [s.name for s in cls.streams]
        assert names and len(names) == len(set(names)), "stream names must be unique"
        assert all(s.name for s in cls.streams)
        assert cls.Settings.model_config.get("extra") == "forbid", (
            "Settings must forbid unknown keys"
        )

    def test_full_sync_loads_every_stream(self, hub_store):
        world = self.make_world()
        results = self.sync(hub_store, world)
        failed = {n: r.error for n, r in results.items() if r.status != "ok"}
        assert not failed, f"streams failed: {failed}"
        expected = self.expect_records if self.expect_records is not None else set(results)
        empty = [n for n in expected if results[n].records == 0]
        assert not empty, f"streams returned no records: {empty}"

    def test_noop_resync_is_minimal(self, hub_store):
        world = self.make_world()
        self.sync(hub_store, world)
        before = self.snapshot(hub_store)
        results = self.sync(hub_store, world)
        assert all(r.status == "ok" for r in results.values()), {
            n: r.error for n, r in results.items()
        }
        total = sum(r.requests for r in results.values())
        limit = self.max_noop_requests if self.max_noop_requests is not None else len(results)
        assert total <= limit, (
            f"a no-change sync made {total} requests (limit {limit}): { {n: r.requests for n, r in results.items()} }"
        )
        assert sum(r.changed for r in results.values()) == 0
        assert self.snapshot(hub_store) == before

    def test_incremental_picks_up_changes_only(self, hub_store):
        world = self.make_world()
        first = self.sync(hub_store, world)
        self.change(world)
        second = self.sync(hub_store, world)
        assert all(r.status == "ok" for r in second.values()), {
            n: r.error for n, r in second.items()
        }
        changed = sum(r.changed for r in second.values())
        total = sum(r.records for r in first.values())
        assert 0 < changed < total, f"incremental sync changed {changed} of {total} records"
        # The incremental result equals a fresh full sync of the same upstream state.
        fresh = Store(":memory:")
        self.sync(fresh, world)
        assert self._live(self.snapshot(hub_store)) == self._live(self.snapshot(fresh))

    def test_bookmarks_never_go_backwards(self, hub_store):
        world = self.make_world()
        self.sync(hub_store, world)
        first = {
            s.name: (hub_store.get_state(self.connection, s.name) or {}).get("bookmark")
            for s in self.connector().get_streams()
        }
        self.change(world)
        self.sync(hub_store, world)
        for name, old in first.items():
            new = (hub_store.get_state(self.connection, name) or {}).get("bookmark")
            if (
                old is not None
                and new is not None
                and type(old) is type(new)
                and not isinstance(old, dict)
            ):
                assert new >= old, f"{name}: bookmark went backwards ({old!r} -> {new!r})"

    def test_resume_after_failure_mid_stream(self, hub_store):
        world = self.make_world()
        self.inject(world, "400", count=1, after=1, path=self.resume_path)
        broken = self.sync(hub_store, world)
        assert any(r.status == "error" for r in broken.values()), (
            "the injected failure did not stop a stream"
        )
        resumed = self.sync(hub_store, world)
        assert all(r.status == "ok" for r in resumed.values()), {
            n: r.error for n, r in resumed.items()
        }
        fresh = Store(":memory:")
        self.sync(fresh, world)
        assert self._live(self.snapshot(hub_store)) == self._live(self.snapshot(fresh)), (
            "records lost or duplicated after resume"
        )

    def test_retries_429_and_5xx(self, hub_store):
        world = self.make_world()
        self.inject(world, "429", count=2)
        self.inject(world, "503", count=2)
        results = self.sync(hub_store, world)
        assert all(r.status == "ok" for r in results.values()), {
            n: r.error for n, r in results.items()
        }
        assert sum(r.retries for r in results.values()) >= 4
        fresh = Store(":memory:")
        self.sync(fresh, world)
        assert self._live(self.snapshot(hub_store)) == self._live(self.snapshot(fresh))

    def test_bad_credentials_fail_fast_and_clearly(self, hub_store):
        if self.bad_settings is None:
            pytest.skip("no bad_settings given")
        world = self.make_world()
        results = self.sync(hub_store, world, self.bad_settings)
        assert all(r.status == "error" for r in results.values())
        for r in results.values():
            assert r.retries == 0, f"{r.stream} retried a credential error"
            assert "\n" not in (r.error or "")
            for secret in self.connector(self.bad_settings).secrets():
                assert secret not in (r.error or "")

    def test_no_secret_in_logs(self, hub_store, caplog):
        caplog.set_level(logging.DEBUG, logger="hub")
        world = self.make_world()
        self.sync(hub_store, world)
        secrets = self.connector().secrets()
        assert secrets, "the connector declares no SecretStr settings"
        for secret in secrets:
            assert secret not in caplog.text
            assert secret not in "\n".join(hub_store.db.conn.iterdump())

    @staticmethod
    def _live(
        snapshot: dict[str, list[tuple[str, str, int]]],
    ) -> dict[str, list[tuple[str, str, int]]]:
        # Compare ids and bodies; tables of volatile look-up metadata can override this.
        return snapshot


class SandboxConnectorTests(ConnectorTests):
    """``ConnectorTests`` wired to the built-in sandbox (``hub.sandbox``)."""

    api_name: ClassVar[str] = ""
    companies: ClassVar[int] = 30
    seed: ClassVar[int] = 7
    advance_days: ClassVar[int] = 2

    def make_world(self) -> Any:
        from hub.registry import get_registry
        from hub.sandbox.world import build_sandbox

        return build_sandbox(
            companies=self.companies,
            seed=self.seed,
            extra_apis=list(get_registry().sandbox_apis.values()),
        )

    def transport(self, world: Any) -> Any:
        return world.transport()

    def change(self, world: Any) -> None:
        from hub.sandbox.world import advance

        advance(world, self.advance_days)

    def inject(
        self, world: Any, kind: str, *, count: int = 1, after: int = 0, path: str | None = None
    ) -> None:
        params = {"retry_after": 0} if kind == "429" else {}
        world.api(self.api_name).faults.inject(kind, count=count, after=after, path=path, **params)


# The mapping suite lives in its own module; re-exported so plugins import from hub.testing.
from hub.testing.mappings import MappingTests, write_rows  # noqa: E402
from hub.testing.served import HubConfig, build_sandbox, hub_toml, serving  # noqa: E402

__all__ = [
    "ConnectorTests",
    "HubConfig",
    "MappingTests",
    "SandboxConnectorTests",
    "build_sandbox",
    "hub_toml",
    "serving",
    "write_rows",
]
