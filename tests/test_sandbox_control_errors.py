"""The sandbox's fault and control endpoints: the ``--fault`` ``k=v`` form and ``"a,b"``
strings for list params, ``partial_207`` on batch writes only, and a 400 naming the bad
parameter and the fix for each malformed control request (in process, no server)."""

from __future__ import annotations

import httpx
import pytest

from hub.cli.sandbox import parse_fault
from hub.sandbox.world import CREDENTIALS, build_sandbox

HUBSPOT = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}


@pytest.fixture(scope="module")
def sandbox():
    return build_sandbox(companies=6, seed=3)


def control(sandbox, method, path, **kwargs):
    with httpx.Client(transport=sandbox.transport(), base_url="http://sandbox") as http:
        return http.request(method, path, **kwargs)


def hubspot(sandbox) -> httpx.Client:
    return httpx.Client(
        transport=sandbox.transport(), base_url="https://api.hubapi.com", headers=HUBSPOT
    )


@pytest.mark.parametrize(
    "inject",
    [
        lambda sb: sb.inject(**parse_fault("hubspot:partial_207:indexes=0")),  # --fault form
        lambda sb: control(
            sb,
            "POST",
            "/__sandbox/faults",
            json={"api": "hubspot", "kind": "partial_207", "params": {"indexes": "0,1"}},
        ),
    ],
    ids=["cli", "control"],
)
def test_partial_207_accepts_both_forms_and_breaks_batch_writes_only(inject):
    sandbox = build_sandbox(companies=6, seed=3)
    inject(sandbox)
    with hubspot(sandbox) as http:
        ids = [c["id"] for c in http.get("/crm/v3/objects/companies").json()["results"][:3]]
        read = http.post(
            "/crm/v3/objects/companies/batch/read", json={"inputs": [{"id": i} for i in ids]}
        )
        assert read.status_code == 200, read.text  # reads neither fail nor use the fault up
        inputs = [{"id": i, "properties": {"description": "x"}} for i in ids]
        write = http.post("/crm/v3/objects/companies/batch/update", json={"inputs": inputs})
    assert write.status_code == 207, write.text
    assert write.json()["numErrors"] >= 1


@pytest.mark.parametrize(
    "method, path, kwargs, words",
    [
        ("POST", "/__sandbox/advance?days=abc", {}, ["days='abc'", "whole number", "days=3"]),
        ("POST", "/__sandbox/advance?days=-5", {}, ["days='-5'", "from 1"]),
        ("POST", "/__sandbox/faults", {"content": b"x"}, ["not JSON", '"api": "hubspot"']),
        ("POST", "/__sandbox/faults", {"json": {"kind": "429"}}, ['"api" and "kind"']),
        (
            "POST",
            "/__sandbox/faults",
            {"json": {"api": "hubspot", "kind": "429", "cnt": 2}},
            ["'cnt'"],
        ),
        (
            "POST",
            "/__sandbox/faults",
            {"json": {"api": "hubspot", "kind": "partial_207", "params": {"indexes": "a"}}},
            ['"indexes"', '"0,2"'],
        ),
        (
            "POST",
            "/__sandbox/webhooks/payment_failed",
            {"json": {"company": "nosuch"}},
            ['"company"', "'nosuch'", "from 0 to 5"],
        ),
        (
            "POST",
            "/__sandbox/webhooks/ticket_escalated",
            {"json": {"company": 99}},
            ['"company"', "99", "leave it out"],
        ),
    ],
)
def test_a_bad_control_request_is_a_400_naming_the_parameter_and_the_fix(
    sandbox, method, path, kwargs, words
):
    before = sandbox.world.now()
    response = control(sandbox, method, path, **kwargs)
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    for word in words:
        assert word in message, message
    assert sandbox.world.now() == before  # nothing moved
