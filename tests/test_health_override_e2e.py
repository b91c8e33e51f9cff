"""Overrides end to end against the sandbox HubSpot: the hub pushes its own override, reads
it back through the sync, and after ``--clear`` shows the computed score again; a CSM's
override typed into HubSpot wins until its date and then gives way to the computed score."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from hub import clock
from hub.health import clear_override, set_override
from hub.sandbox.world import CREDENTIALS, build_sandbox
from hub.store import Store

pytest.importorskip("mappings.hubspot", reason="the HubSpot mapping is not installed yet")


def _row(store: Store, account_id: str) -> dict:
    cursor = store.db.execute(
        "SELECT score, computed_score, override_value FROM health_scores WHERE account_id = ?",
        [account_id],
    )
    return dict(zip(("score", "computed", "override"), cursor.fetchone()))


def test_the_hub_never_takes_its_own_override_for_a_csms(tmp_path):
    from hub.demo import demo_config
    from hub.pipeline import run_pipeline

    sandbox = build_sandbox(companies=12, seed=3)
    clock.set_source(sandbox.world.clock.now)
    hs = sandbox.api("hubspot")
    config = demo_config(str(tmp_path / "hub.db"))
    store = Store(tmp_path / "hub.db")
    try:
        run_pipeline(store, config, transport=sandbox.transport())
        account = store.db.execute(
            "SELECT account_id, computed_score FROM health_scores "
            "WHERE computed_score BETWEEN 20 AND 90 ORDER BY account_id LIMIT 1"
        ).fetchone()
        assert account is not None
        aid, computed = account
        value = 5 if computed > 50 else 95
        until = (clock.now().date() + dt.timedelta(days=20)).isoformat()

        # The hub's override is pushed to HubSpot, then read back by the next sync.
        set_override(store, aid, value, "payment plan agreed", until, config)
        run_pipeline(store, config, transport=sandbox.transport())
        assert hs.get("companies", aid)["properties"]["hub_health_override"] == str(value)
        run_pipeline(store, config, transport=sandbox.transport())
        assert _row(store, aid)["score"] == value

        # --clear: the CRM still holds the hub's own value until the next push empties it;
        # the hub recognises it as its own and shows the computed score at once.
        clear_override(store, aid, config)
        run_pipeline(store, config, transport=sandbox.transport())
        row = _row(store, aid)
        assert row["override"] is None and row["score"] == row["computed"]
        assert hs.get("companies", aid)["properties"].get("hub_health_override") in ("", None)
        run_pipeline(store, config, transport=sandbox.transport())
        row = _row(store, aid)
        assert row["override"] is None and row["score"] == row["computed"]

        # A CSM sets an override in HubSpot (an hour later): it wins until its date.
        sandbox.world.clock.advance(3600)
        csm_value = 50 if row["computed"] != 50 else 60
        csm_until = (clock.now().date() + dt.timedelta(days=3)).isoformat()
        with httpx.Client(
            transport=sandbox.transport(),
            base_url="https://api.hubapi.com",
            headers={"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"},
        ) as client:
            response = client.patch(
                f"/crm/v3/objects/companies/{aid}",
                json={
                    "properties": {
                        "hub_health_override": str(csm_value),
                        "hub_health_override_reason": "exec sponsor left",
                        "hub_health_override_until": csm_until,
                    }
                },
            )
            assert response.status_code == 200, response.text
        run_pipeline(store, config, transport=sandbox.transport())
        run_pipeline(store, config, transport=sandbox.transport())  # its echo stays the CSM's
        assert _row(store, aid)["score"] == csm_value
        # After its date the computed score returns.
        sandbox.world.clock.advance(4 * 86400)
        run_pipeline(store, config, transport=sandbox.transport())
        row = _row(store, aid)
        assert row["override"] is None and row["score"] == row["computed"]
    finally:
        store.close()
        clock.set_source(None)
