"""End to end against the sandbox: sync → map → health → playbooks → push.

Needs the HubSpot mapping (accounts are HubSpot companies); skipped while it is not installed.
"""

from __future__ import annotations

import pytest

from hub import clock
from hub.sandbox.world import build_sandbox
from hub.store import Store
from tests.test_push import hub_tasks, strip_hub

pytest.importorskip("mappings.hubspot", reason="the HubSpot mapping is not installed yet")


def test_pipeline_pushes_every_linked_company_and_reruns_write_nothing(tmp_path):
    from hub.demo import demo_config
    from hub.pipeline import run_pipeline
    from hub.playbooks import Outbox

    sandbox = build_sandbox(companies=40, seed=5)
    clock.set_source(sandbox.world.clock.now)
    hs = sandbox.api("hubspot")
    config = demo_config(str(tmp_path / "hub.db"))
    store = Store(tmp_path / "hub.db")
    try:
        before = hs.snapshot()
        first = run_pipeline(store, config, transport=sandbox.transport())
        push = first.steps.get("push")
        assert push is not None, first.errors
        assert push.status == "ok", push.errors
        rows = list(
            store.db.query(
                "SELECT a.hubspot_company_id AS cid, h.score, h.band FROM health_scores h "
                "JOIN accounts a ON a.id = h.account_id WHERE h.score IS NOT NULL"
            )
        )
        assert rows
        for row in rows:
            props = hs.get("companies", row["cid"])["properties"]
            if row["band"] == "churned":  # [push.scope] leaves churned accounts out by default
                assert "hub_health_score" not in props
                continue
            assert props["hub_health_score"] == str(row["score"])
            assert props["hub_health_band"] == row["band"]
        assert strip_hub(hs.snapshot()) == strip_hub(before)
        assert len(hub_tasks(hs)) == len(Outbox(store).tasks(["pushed"]))
        # Nothing changed upstream (our own writes come back through the sync): no writes.
        writes = len(hs.writes)
        second = run_pipeline(store, config, transport=sandbox.transport())
        assert second.steps["push"].writes == 0, second.steps["push"].summary()
        assert len(hs.writes) == writes
        # A CSM completes a task in HubSpot: read back by the pusher, snoozed, not recreated.
        task = Outbox(store).tasks(["pushed"])[0]
        sandbox.world.clock.advance(3600)
        hs.complete_task(task["remote_id"])
        third = run_pipeline(store, config, transport=sandbox.transport())
        assert third.steps["push"].completed == [task["id"]]
        row = Outbox(store).get(task["id"])
        assert row["status"] == "completed" and row["snoozed_until"] > clock.iso()
        same = [
            t
            for t in Outbox(store).tasks()
            if (t["account_id"], t["playbook"], t["reason"])
            == (task["account_id"], task["playbook"], task["reason"])
        ]
        assert same == [row]
    finally:
        store.close()
