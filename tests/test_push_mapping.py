# ruff: noqa: F811 - the fixtures are imported from tests.test_push
"""``[push.hubspot.properties]``: health fields written to properties the portal already has,
checked against the portal's definitions before anything is written; labels and group
configurable; uninstall never archives a mapped property, revert restores it."""

from __future__ import annotations

import httpx
import pytest

from hub.errors import ConfigError
from hub.push import run_push
from hub.push.undo import revert_run, uninstall
from hub.sandbox.world import CREDENTIALS
from tests.test_push import hs, make_config, sandbox, seed_health  # noqa: F401 - fixtures

TOKEN = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}


def admin_creates(sandbox, name: str, ptype: str, field: str, **extra) -> None:
    """What an admin does in HubSpot's settings before mapping the score onto it."""
    with httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com") as http:
        created = http.post(
            "/crm/v3/properties/companies",
            json={
                "name": name,
                "label": name.replace("_", " ").title(),
                "type": ptype,
                "fieldType": field,
                "groupName": "companyinformation",
                **extra,
            },
            headers=TOKEN,
        )
        assert created.status_code == 201, created.text


def test_a_mapped_score_lands_on_the_portals_property_and_stays_on_uninstall(
    store,
    sandbox,
    hs,  # noqa: F811
):
    expected = seed_health(store, sandbox)
    admin_creates(sandbox, "health_score", "number", "number")
    config = make_config(
        push={"tasks": False},
        hubspot={
            "properties": {"score": "health_score"},
            "labels": {"band": "Customer health band"},
            "group_label": "Customer health",
        },
    )
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    props = hs.properties("companies")
    assert "hub_health_score" not in props
    assert props["hub_health_band"]["label"] == "Customer health band"
    assert props["health_score"]["groupName"] == "companyinformation"  # never changed
    some = sorted(expected)[0]
    assert (
        hs.get("companies", some)["properties"]["health_score"]
        == expected[some]["hub_health_score"]
    )
    assert {c.property for c in result.written} >= {"health_score", "hub_health_band"}

    # A new label in the config is followed on the next push (and only then).
    relabelled = make_config(
        push={"tasks": False},
        hubspot={"properties": {"score": "health_score"}, "labels": {"band": "Band (hub)"}},
    )
    again = run_push(store, relabelled, transport=sandbox.transport())
    assert again.setup == ["update the label of hub_health_band"]
    assert hs.properties("companies")["hub_health_band"]["label"] == "Band (hub)"
    assert run_push(store, relabelled, transport=sandbox.transport()).setup == []

    # Revert restores the mapped property too.
    store.db.execute("UPDATE health_scores SET score = 3 WHERE account_id = ?", [some])
    second = run_push(store, config, transport=sandbox.transport())
    assert hs.get("companies", some)["properties"]["health_score"] == "3"
    reverted = revert_run(store, config, second.run_id, transport=sandbox.transport())
    assert reverted.status == "ok" and reverted.count("value", "done") == 1
    assert (
        hs.get("companies", some)["properties"]["health_score"]
        == expected[some]["hub_health_score"]
    )

    # Uninstall archives only what the hub created.
    removed = uninstall(store, config, "hubspot", dry_run=False, transport=sandbox.transport())
    assert removed.status == "ok", removed.errors
    assert "health_score" not in {i.object_id for i in removed.items}
    assert "health_score" in hs.properties("companies")
    assert "hub_health_band" not in hs.properties("companies")


def test_a_mapping_that_does_not_fit_stops_the_push_before_any_write(
    store,
    sandbox,
    hs,  # noqa: F811
    capsys,
    monkeypatch,
):
    from hub.cli import render
    from hub.cli.push import print_push_preview
    from hub.push.preview import build_preview

    seed_health(store, sandbox)
    admin_creates(sandbox, "health_band", "number", "number")
    config = make_config(push={"tasks": False}, hubspot={"properties": {"band": "health_band"}})
    # The dry run fails too, and says why before any count ("would write 0 values").
    dry = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert dry.status in ("error", "partial")
    monkeypatch.setattr(render, "err_console", render.console)  # one stream, in order
    print_push_preview(dry, build_preview(store, dry))
    out = capsys.readouterr().out
    assert out.startswith("error: hubspot: ") and "health_band is a number property" in out
    assert out.index("error:") < out.index("would write 0 values")
    hs.writes.clear()
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "error" and hs.writes == []
    [error] = result.errors
    assert "health_band is a number property (number)" in error
    assert "band needs a dropdown or a text property" in error
    missing = make_config(push={"tasks": False}, hubspot={"properties": {"score": "nope"}})
    preview = run_push(store, missing, dry_run=True, transport=sandbox.transport())
    assert "HubSpot has no company property nope" in preview.errors[0]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"override": "my_override"}, "override fields keep their own properties"),
        ({"scroe": "x"}, "no such health field"),
        ({"score": "hub_health_band"}, "one of the hub's own names"),
        ({"score": "same", "coverage": "same"}, "both map to same"),
    ],
)
def test_mapping_config_errors_are_one_line(mapping, message):
    with pytest.raises(ConfigError) as err:
        from hub.push import validate_config

        validate_config(make_config(hubspot={"properties": mapping}))
    assert message in str(err.value) and "\n" not in str(err.value)
