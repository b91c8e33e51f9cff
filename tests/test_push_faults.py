"""Exactly-once writes against the HubSpot sandbox served over loopback HTTP, with the answer
lost after the fake had already executed the write (a read timeout, a connection reset, a
502 from a proxy): no task and no property is created twice, and the push says what it did.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from hub.config import parse_config
from hub.playbooks import Outbox, run_playbooks
from hub.push import run_push
from hub.sandbox.base import json_response
from hub.sandbox.world import CREDENTIALS, build_sandbox
from plugins.hubspot_pusher import ALLOWED_PROPERTIES, marker_for
from tests.test_push import hub_tasks, seed_health

BATCH_CREATE = r"^/crm/v3/objects/tasks/batch/create$"
SINGLE_CREATE = r"^/crm/v3/objects/tasks$"
CLIENT_TIMEOUT = 1.0


class LoseAnswers:
    """Wraps a sandbox's handler: the fake executes the request, then the answer is lost."""

    def __init__(self, sandbox, path: str, kind: str, count: int = 1):
        self.sandbox, self.path, self.kind, self.left = sandbox, re.compile(path), kind, count
        self.real = sandbox.handle
        self.fired = 0
        sandbox.handle = self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self.real(request)
        if self.left and request.method == "POST" and self.path.search(request.url.path):
            self.left -= 1
            self.fired += 1
            if self.kind == "timeout":
                time.sleep(CLIENT_TIMEOUT + 0.4)  # answered after the client gave up
            elif self.kind == "reset":
                raise httpx.RemoteProtocolError("connection reset (injected)", request=request)
            elif self.kind == "502":
                return json_response(502, {"message": "Bad gateway (injected)"})
        return response


@pytest.fixture
def served(store):
    sandbox = build_sandbox(companies=16, seed=4)
    server = sandbox.serve()
    try:
        yield sandbox, server
    finally:
        server.stop()


def config_for(url: str, **hubspot):
    return parse_config(
        {
            "connections": {
                "hubspot": {
                    "connector": "hubspot",
                    "settings": {
                        **CREDENTIALS["hubspot"],
                        "base_url": url,
                        "timeout": CLIENT_TIMEOUT,
                        "max_attempts": 3,
                        "burst_limit": 250,
                    },
                }
            },
            "push": {
                "max_tasks_per_run": 0,
                "max_tasks_per_owner": 0,
                "hubspot": {"record_retry_delay": 0, **hubspot},
            },
        }
    )


def assert_each_task_once(store, hs) -> None:
    tasks = Outbox(store).tasks()
    assert tasks and all(t["status"] == "pushed" for t in tasks), [t["status"] for t in tasks]
    for task in tasks:
        body = [
            t for t in hub_tasks(hs) if marker_for(task["id"]) in t["properties"]["hs_task_body"]
        ]
        assert [t["id"] for t in body] == [task["remote_id"]], task["id"]
    assert len(hub_tasks(hs)) == len(tasks)


@pytest.mark.parametrize("kind", ["timeout", "reset", "502"])
def test_a_lost_batch_create_answer_creates_no_duplicate(store, served, kind):
    sandbox, server = served
    hs = sandbox.api("hubspot")
    seed_health(store, sandbox)
    config = config_for(server.url)
    run_playbooks(store, config)
    assert len(Outbox(store).tasks(["open"])) >= 3
    lost = LoseAnswers(sandbox, BATCH_CREATE, kind)
    result = run_push(store, config)
    assert lost.fired == 1
    assert result.status == "ok", result.errors
    assert_each_task_once(store, hs)
    # The push reports the lost answer and how it was settled, and counts it as a retry.
    assert result.retries >= 1
    assert any("answer was lost" in n for n in result.notes), result.notes
    assert all(t.action == "found" for t in result.tasks), [t.action for t in result.tasks]
    run = store.runs(kind="push")[0]
    assert "answer was lost" in run["note"] and run["retries"] >= 1
    # Nothing left to do: a second push creates nothing.
    again = run_push(store, config)
    assert again.writes == 0 and len(hub_tasks(hs)) == len(Outbox(store).tasks())


@pytest.mark.parametrize("kind", ["timeout", "reset", "502"])
def test_a_lost_single_create_answer_creates_no_duplicate(store, served, kind):
    sandbox, server = served
    hs = sandbox.api("hubspot")
    seed_health(store, sandbox)
    config = config_for(server.url)
    run_playbooks(store, config)
    # The batch refuses two records (a 207), so they are created alone; those answers get lost.
    hs.faults.inject("partial_207", path=r"/tasks/batch/create$", fail=2)
    lost = LoseAnswers(sandbox, SINGLE_CREATE, kind, count=2)
    result = run_push(store, config)
    assert lost.fired == 2
    assert result.status == "ok", result.errors
    assert_each_task_once(store, hs)
    assert result.retries >= 2
    assert len([n for n in result.notes if "found it in HubSpot, not created again" in n]) == 2


def test_a_lost_property_create_answer_is_looked_up_not_resent(store, served):
    sandbox, server = served
    hs = sandbox.api("hubspot")
    seed_health(store, sandbox)
    config = config_for(server.url)
    lost = LoseAnswers(sandbox, r"^/crm/v3/properties/companies(/groups)?$", "reset", count=3)
    result = run_push(store, config)
    assert lost.fired == 3
    assert result.status == "ok", result.errors
    creates = [w for w in hs.writes if re.match(r"/crm/v3/properties/companies(/groups)?$", w[1])]
    names = [w[2]["name"] for w in creates]
    assert sorted(names) == sorted([*ALLOWED_PROPERTIES, "hub_health"])  # each sent once
    assert len([n for n in result.notes if "not created again" in n]) == 3
