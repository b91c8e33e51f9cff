"""Acceptance: a new admin takes the write-back through its whole life from the CLI, against
the sandbox served over loopback HTTP, reading the fake portal back after every step.

Scope the push to one segment, map the score onto a property the admin created first,
preview, push, revert, uninstall and re-install; nothing outside the configured properties
changes. And a token without ``crm.objects.contacts.write`` makes ``hub check`` name that
scope and exit 1.
"""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from hub.cli import cli
from hub.sandbox.world import CREDENTIALS, build_sandbox
from hub.testing import hub_toml

HUB_OWN = {
    "hub_health_band",
    "hub_health_trend_7d",
    "hub_health_trend_30d",
    "hub_health_drivers",
    "hub_health_updated_at",
    "hub_health_model",
    "hub_health_segment",
    "hub_health_coverage",
    "hub_health_override",
    "hub_health_override_reason",
    "hub_health_override_until",
}
SETUP = """
[[health.segments]]
name = "enterprise"
model = "default"
mrr_at_least = 300

[push]
max_tasks_per_owner = 0

[push.scope]
segments = ["enterprise"]
"""
MAPPING = """
[push.hubspot.properties]
score = "health_score"
"""


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    sandbox = build_sandbox(companies=15, seed=3)
    server = sandbox.serve()
    yield sandbox, server
    server.stop()


def hub(conf, *args, code=0):
    result = CliRunner().invoke(cli, ["-c", str(conf), *args])
    assert result.exit_code == code, result.output
    return result


def hub_json(conf, *args, code=0):
    return json.loads(hub(conf, *args, "--json", code=code).stdout)


def write_config(path, url, token=None):
    # Every connection of the served world, the database beside the config.
    return hub_toml(
        path,
        url,
        database=path.parent / "hub.db",
        settings={"hubspot": {"access_token": token}} if token else None,
        extra=SETUP + MAPPING,
    ).path


def test_a_new_admin_scopes_maps_previews_pushes_reverts_uninstalls_and_reinstalls(
    portal, tmp_path
):
    sandbox, server = portal
    hs = sandbox.api("hubspot")
    http = httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"},
        timeout=10,
    )

    def companies() -> dict[str, dict]:
        props = ",".join(sorted({"health_score", "name", "domain", *HUB_OWN}))
        out, after = {}, None
        while True:
            params = {"limit": 100, "properties": props, **({"after": after} if after else {})}
            page = http.get("/crm/v3/objects/companies", params=params).json()
            # A property that does not exist and an unset one read the same: left out.
            out.update(
                {
                    c["id"]: {k: v for k, v in c["properties"].items() if v not in (None, "")}
                    for c in page["results"]
                }
            )
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return out

    def property_names() -> set[str]:
        return {p["name"] for p in http.get("/crm/v3/properties/companies").json()["results"]}

    # The admin has a "Health score" property already and maps the score onto it.
    created = http.post(
        "/crm/v3/properties/companies",
        json={
            "name": "health_score",
            "label": "Health score",
            "type": "number",
            "fieldType": "number",
            "groupName": "companyinformation",
        },
    )
    assert created.status_code == 201, created.text
    conf = write_config(tmp_path / "hub.toml", server.url)
    hub(conf, "sync", "hubspot", "stripe")
    hub(conf, "map")
    hub(conf, "health")
    hub(conf, "playbooks", "--run")
    assert "push:hubspot" in hub(conf, "check").output

    snapshot = hs.snapshot()
    before = companies()
    tasks_before = {t["id"] for t in hs.objects("tasks")}
    preview = hub_json(conf, "push", "--dry-run")
    assert hs.snapshot() == snapshot  # a preview writes nothing
    scoped = {i["object_id"] for i in preview["items"] if i["changes"]}
    assert scoped and len(scoped) < len(before)
    assert preview["summary"]["values_by_property"]["health_score"] == len(scoped)
    assert "hub_health_score" not in preview["summary"]["values_by_property"]

    pushed = hub_json(conf, "push")
    run_id = pushed["run_id"]
    after = companies()
    assert "hub_health_score" not in property_names()  # mapped: the hub made no score of its own
    assert property_names() >= HUB_OWN
    for cid, props in after.items():
        if cid in scoped:  # only the one segment
            assert props.get("health_score")
            assert props["hub_health_segment"] == "enterprise"
        else:  # out of scope: untouched
            assert props == before[cid]
        # HubSpot stamps hs_lastmodifieddate on every write; nothing else may move.
        written = HUB_OWN | {"health_score", "hs_lastmodifieddate"}
        assert {k: v for k, v in props.items() if k not in written} == {
            k: v for k, v in before[cid].items() if k not in written
        }
    new_tasks = {t["id"] for t in hs.objects("tasks")} - tasks_before
    assert len(new_tasks) == pushed["summary"]["tasks"]

    # Revert: the score goes back to what it was (unset) and the run's open tasks are archived.
    reverted = hub_json(conf, "push", "revert", str(run_id))
    assert reverted["status"] == "ok", reverted["errors"]
    now = companies()
    assert not any(now[cid].get("health_score") for cid in scoped)
    assert new_tasks <= {t["id"] for t in hs.objects("tasks", archived=True)}

    # Uninstall: a dry run first, then --yes; the mapped property stays.
    listed = hub_json(conf, "uninstall", "hubspot", "--tasks")
    installed = [i for i in listed["items"] if i["what"] == "installed"]
    assert {i["object_id"] for i in installed if i["kind"] == "field"} == HUB_OWN
    assert property_names() >= HUB_OWN
    removed = hub_json(conf, "uninstall", "hubspot", "--tasks", "--yes")
    assert removed["status"] == "ok", removed["errors"]
    assert not HUB_OWN & property_names() and "health_score" in property_names()
    history = hub_json(conf, "push", "history")
    assert [i["kind"] for i in history["items"]][:3] == ["uninstall", "revert", "push"]

    # Re-install: the next push restores the hub's properties and writes every value again.
    again = hub_json(conf, "push")
    assert again["status"] == "ok", again["errors"]
    assert property_names() >= HUB_OWN
    final = companies()
    assert all(final[cid].get("health_score") for cid in scoped)
    assert all(final[cid] == before[cid] for cid in final if cid not in scoped)
    http.close()


def test_check_names_a_missing_contacts_write_scope(portal, tmp_path):
    sandbox, server = portal
    sandbox.api("hubspot").issue_token("pat-na1-no-tasks", without={"crm.objects.contacts.write"})
    conf = write_config(tmp_path / "hub.toml", server.url, token="pat-na1-no-tasks")
    out = hub(conf, "check", code=1).output
    assert "crm.objects.contacts.write" in out and "✗" in out
