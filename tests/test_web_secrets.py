"""No configured secret value appears in any page or export of the web app, and ``hub check``
warns about literal webhook secrets as it does about literal connection secrets."""

from __future__ import annotations

import os
import sqlite3
import warnings

from click.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from hub.cli import cli
from hub.config import parse_config
from hub.web import WebOptions, create_app
from tests.web_support import demo_database

SECRETS = {
    "connection_literal": "pat-literal-9f8e7d6c",
    "connection_env": "tok_env_secret_value_123",
    "webhook_literal": "hs-sandbox-app-client-secret",
    "webhook_env": "whsec_env_value_456",
}


def test_no_configured_secret_appears_in_any_page(tmp_path_factory, monkeypatch):
    db = str(demo_database(tmp_path_factory, tmp_path_factory.mktemp("sec") / "hub.db"))
    monkeypatch.setenv("HUB_SEC_TOKEN", SECRETS["connection_env"])
    monkeypatch.setenv("HUB_SEC_HOOK", SECRETS["webhook_env"])
    config = parse_config(
        {
            "connections": {
                "crm": {
                    "connector": "hubspot",
                    "settings": {"access_token": SECRETS["connection_literal"]},
                },
                "billing": {"connector": "stripe", "settings": {"api_key": "env:HUB_SEC_TOKEN"}},
            },
            "webhooks": {
                "secrets": {"crm": SECRETS["webhook_literal"], "billing": "env:HUB_SEC_HOOK"}
            },
        }
    )
    conn = sqlite3.connect(db)
    account = conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 1").fetchone()[0]
    run = conn.execute("SELECT MAX(id) FROM _hub_runs").fetchone()[0]
    conn.close()
    pages = ["/", "/accounts", "/accounts.csv", "/accounts.json", "/portfolio", "/identity"]
    pages += ["/runs", f"/runs/{run}", "/settings", f"/accounts/{account}"]
    pages += [f"/accounts/{account}/explain"]
    app = create_app(WebOptions(db_path=db, config=config))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        for page in pages:
            response = c.get(page)
            assert response.status_code == 200, page
            for what, value in SECRETS.items():
                assert value not in response.text, f"{what} shown on {page}"
        settings = c.get("/settings").text
    assert "env:HUB_SEC_HOOK" in settings and "env:HUB_SEC_TOKEN" in settings


def test_hub_check_warns_about_a_literal_webhook_secret(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\ndatabase = "{tmp_path / "hub.db"}"\n'
        '[connections.crm]\nconnector = "hubspot"\n'
        '[connections.crm.settings]\naccess_token = "env:HUB_SEC_UNSET"\n'
        f'[webhooks.secrets]\ncrm = "{SECRETS["webhook_literal"]}"\n'
    )
    os.chmod(config, 0o600)
    runner = CliRunner()
    result = runner.invoke(cli, ["-c", str(config), "check", "--offline"])
    assert "warning: webhooks.secrets.crm is a literal secret" in result.stderr, result.stderr
    assert SECRETS["webhook_literal"] not in result.output
    # Other commands leave the warning to `hub check` (the config's documented contract).
    status = runner.invoke(cli, ["-c", str(config), "status"])
    assert "literal secret" not in status.stderr, status.stderr
    # Under --log-json the warning is a JSON log line, not a plain one.
    logged = runner.invoke(cli, ["-c", str(config), "--log-json", "check", "--offline"])
    lines = [ln for ln in logged.stderr.splitlines() if "webhooks.secrets.crm" in ln]
    assert lines and all(ln.startswith("{") for ln in lines), logged.stderr
