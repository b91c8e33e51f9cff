"""The sandbox's ``missing_scope`` fault: a HubSpot token lacking one scope, as ``hub sandbox
serve --fault`` and ``POST /__sandbox/faults`` inject it, seen through the real CLI."""

from __future__ import annotations

import json
import os

import httpx
from click.testing import CliRunner

from hub.cli import cli
from hub.cli.sandbox import parse_fault
from hub.sandbox.world import CREDENTIALS, build_sandbox

WRITE = "crm.objects.contacts.write"
TOKEN = CREDENTIALS["hubspot"]["access_token"]
HUBSPOT = {"Authorization": f"Bearer {TOKEN}"}


def test_a_token_missing_one_scope_fails_only_what_needs_it(tmp_path, monkeypatch):
    sandbox = build_sandbox(companies=6, seed=3)
    # Exactly what `hub sandbox serve --fault hubspot:missing_scope:scope=...` does.
    sandbox.inject(**parse_fault(f"hubspot:missing_scope:scope={WRITE}"))
    server = sandbox.serve()
    try:
        http = httpx.Client(base_url=server.url, timeout=10)
        info = http.post(
            "/oauth/v2/private-apps/get/access-token-info", json={"tokenKey": TOKEN}
        ).json()
        assert WRITE not in info["scopes"] and "crm.objects.contacts.read" in info["scopes"]
        refused = http.post(
            "/crm/v3/objects/tasks", headers=HUBSPOT, json={"properties": {"hs_task_subject": "x"}}
        )
        body = refused.json()
        assert refused.status_code == 403 and body["category"] == "MISSING_SCOPES"
        assert body["errors"][0]["context"]["requiredGranularScopes"] == [WRITE]
        assert http.get("/crm/v3/objects/contacts", headers=HUBSPOT).status_code == 200

        path = tmp_path / "hub.toml"
        path.write_text(
            f"""
[hub]
database = "hub.db"
[connections.hubspot]
connector = "hubspot"
[connections.hubspot.settings]
access_token = "env:HUB_SCOPE_HS"
base_url = "{server.url}"
[push.hubspot]
connection = "hubspot"
"""
        )
        os.chmod(path, 0o600)
        monkeypatch.setenv("HUB_SCOPE_HS", TOKEN)
        check = CliRunner().invoke(cli, ["-c", str(path), "check", "--json"])
        assert check.exit_code == 1, check.output
        failed = [i for i in json.loads(check.stdout)["items"] if not i["ok"]]
        assert [i["connector"] for i in failed] == ["push:hubspot"]
        assert WRITE in failed[0]["detail"]
        named = {w for w in failed[0]["detail"].replace(",", " ").split() if w.startswith("crm.")}
        assert named == {WRITE}  # exactly that scope, no other

        synced = CliRunner().invoke(cli, ["-c", str(path), "sync", "hubspot", "--json"])
        assert synced.exit_code == 0, synced.output
        streams = {i["stream"]: i for i in json.loads(synced.stdout)["items"]}
        assert streams["companies"]["status"] == "ok" and streams["companies"]["records"] == 6

        # The control endpoint takes the scopes as one string too (not split into
        # characters), and its fault lasts until cleared, as --fault's does.
        http.delete("/__sandbox/faults")
        made = http.post(
            "/__sandbox/faults",
            json={
                "api": "hubspot",
                "kind": "missing_scope",
                "params": {"scopes": "crm.objects.companies.write,crm.objects.deals.read"},
            },
        ).json()["fault"]
        assert made["params"]["scopes"] == ["crm.objects.companies.write", "crm.objects.deals.read"]
        assert made["count"] == -1
        for _ in range(2):
            assert http.get("/crm/v3/objects/deals", headers=HUBSPOT).status_code == 403
        assert http.get("/crm/v3/objects/companies", headers=HUBSPOT).status_code == 200
        typo = http.post(
            "/__sandbox/faults",
            json={"api": "hubspot", "kind": "missing_scope", "params": {"scope": "crm.nope"}},
        )
        assert typo.status_code == 400 and "unknown scope crm.nope" in typo.json()["message"]
    finally:
        server.stop()
