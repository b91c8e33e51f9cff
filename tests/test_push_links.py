# ruff: noqa: F811 - the fixtures are imported from tests.test_push
"""Tasks tied to what their evidence names: a renewal task to the renewal deal, a payment
task to the billing contact (found through the billing record's e-mail)."""

from __future__ import annotations

import json

import httpx

from hub.config import parse_config
from hub.playbooks import Outbox, run_playbooks
from hub.push import run_push
from hub.sandbox.world import CREDENTIALS
from tests.test_push import hs, make_config, sandbox, seed_health  # noqa: F401 - fixtures

TOKEN = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}


def test_renewal_and_payment_tasks_are_tied_to_the_deal_and_the_billing_contact(
    store,
    sandbox,
    hs,  # noqa: F811
):
    seed_health(store, sandbox)
    config = parse_config(
        {
            "connections": {
                "hubspot": {"connector": "hubspot", "settings": dict(CREDENTIALS["hubspot"])},
                "billing": {"connector": "stripe", "settings": dict(CREDENTIALS["stripe"])},
            },
            "push": {
                "max_tasks_per_run": 0,
                "max_tasks_per_owner": 0,
                "hubspot": {"record_retry_delay": 0},
            },
        }
    )
    run_playbooks(store, make_config())
    first_look = run_push(store, config, dry_run=True, transport=sandbox.transport())
    planned = {t.task_id for t in first_look.tasks}
    renewal, payment, payment2, payment3 = [
        t for t in Outbox(store).tasks(["open"]) if t["id"] in planned
    ][:4]
    deal = hs.objects("deals")[0]["id"]
    with httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com") as http:
        contact, contact2 = (
            http.post(
                "/crm/v3/objects/contacts",
                json={"properties": {"email": email, "firstname": "Pat"}},
                headers=TOKEN,
            ).json()["id"]
            for email in ("billing@payer.example", "ap@second.example")
        )
    store.db["events"].insert_all(
        [
            {
                "id": f"hubspot:renewal_due:{deal}",
                "entity": f"hubspot:deal:{deal}",
                "account_id": renewal["account_id"],
                "ts": "2026-01-01T00:00:00Z",
                "source": "hubspot",
                "type": "renewal_due",
                "summary": "Renewal due",
                "attrs": json.dumps({"deal_id": deal}),
            },
            {
                "id": "stripe:payment_failed:in_1",
                "entity": "stripe:customer:cus_1",
                "account_id": payment["account_id"],
                "ts": "2026-01-01T00:00:00Z",
                "source": "stripe",
                "type": "payment_failed",
                "summary": "Payment failed",
                "attrs": json.dumps({"invoice_id": "in_1"}),
            },
            *(
                {
                    "id": f"stripe:payment_failed:{inv}",
                    "entity": f"stripe:customer:cus_{inv}",
                    "account_id": task["account_id"],
                    "ts": "2026-01-01T00:00:00Z",
                    "source": "stripe",
                    "type": "payment_failed",
                    "summary": "Payment failed",
                    "attrs": json.dumps({"invoice_id": inv}),
                }
                for inv, task in (("in_2", payment2), ("in_3", payment3))
            ),
        ]
    )
    store.raw_table("billing", "invoices").insert(
        {
            "id": "in_1",
            "data": json.dumps({"id": "in_1", "customer_email": "Billing@payer.example"}),
        }
    )
    for inv, email in (("in_2", "ap@second.example"), ("in_3", "nobody@unknown.example")):
        store.raw_table("billing", "invoices").insert(
            {"id": inv, "data": json.dumps({"id": inv, "customer_email": email})}
        )
    for task, event in (
        (renewal, f"hubspot:renewal_due:{deal}"),
        (payment, "stripe:payment_failed:in_1"),
        (payment2, "stripe:payment_failed:in_2"),
        (payment3, "stripe:payment_failed:in_3"),
    ):
        store.db.execute(
            "UPDATE tasks SET evidence = ? WHERE id = ?", [json.dumps([{"id": event}]), task["id"]]
        )

    searched = len(hs.log)
    preview = run_push(store, config, dry_run=True, transport=sandbox.transport())
    links = {t.task_id: t.links for t in preview.tasks}
    assert links[renewal["id"]] == [f"deal {deal}"]
    assert links[payment["id"]] == [f"contact {contact}"]
    assert links[payment2["id"]] == [f"contact {contact2}"]
    assert links[payment3["id"]] == []  # no contact with that e-mail: the company only
    # Every task's billing e-mail found by one search (searches share a 5-per-second budget).
    searches = [p for _, p, _ in hs.log[searched:] if p == "/crm/v3/objects/contacts/search"]
    assert len(searches) == 1

    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    remote = {t.task_id: t.remote_id for t in result.tasks}
    with httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com") as http:

        def linked(task_id: str, kind: str) -> list[str]:
            path = f"/crm/v4/objects/tasks/{remote[task_id]}/associations/{kind}"
            return [str(r["toObjectId"]) for r in http.get(path, headers=TOKEN).json()["results"]]

        assert linked(renewal["id"], "deals") == [deal]
        assert linked(payment["id"], "contacts") == [contact]
        assert linked(payment["id"], "companies")  # still on its company
