"""Typed mapping settings: ``[timeline.<mapping>]`` validated at once, documented, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from hub.config import parse_config
from hub.errors import ConfigError
from hub.registry import get_registry
from hub.store import Store
from hub.timeline import MappingContext, validate_config
from mappings.hubspot import HubSpotMapping
from mappings.stripe import StripeMapping

ROOT = Path(__file__).resolve().parent.parent


def config_with(timeline: dict) -> object:
    return parse_config({"timeline": timeline})


def test_example_config_timeline_sections_validate_and_document_every_key():
    text = (ROOT / "config.example.toml").read_text()
    data = tomllib.loads(text)
    validate_config(config_with(data.get("timeline", {})))
    for name, mapping in get_registry().mappings.items():
        if name == "example":
            continue
        assert f"[timeline.{name}]" in text, f"config.example.toml has no [timeline.{name}]"
        for key in mapping.Settings.model_fields:
            assert key in text, f"config.example.toml does not document timeline.{name}.{key}"


@pytest.mark.parametrize(
    ("timeline", "message"),
    [
        ({"stripe": {"card_expiring_dayz": 10}}, "unknown key timeline.stripe.card_expiring_dayz"),
        (
            {"zendesk": {"urgent_priority": ["high"]}},
            "unknown key timeline.zendesk.urgent_priority",
        ),
        ({"stripee": {}}, "unknown section timeline.stripee"),
        ({"stripe": {"card_expiring_days": "soon"}}, "timeline.stripe.card_expiring_days:"),
        ({"hubspot": {"renewal_name_pattern": "(renew"}}, "timeline.hubspot.renewal_name_pattern"),
    ],
)
def test_a_typo_fails_with_one_line_naming_the_key(timeline, message):
    with pytest.raises(ConfigError) as info:
        validate_config(config_with(timeline))
    text = str(info.value)
    assert message in text and "\n" not in text
    assert "soon" not in text  # values are never echoed


def test_context_settings_are_the_typed_model(store: Store):
    ctx = MappingContext(
        store=store,
        connection="stripe",
        mapping=StripeMapping(),
        settings={"card_expiring_days": 10},
    )
    assert ctx.settings.card_expiring_days == 10 and ctx.settings.late_grace_days == 1
    hub_ctx = MappingContext(
        store=store, connection="hubspot", mapping=HubSpotMapping(), settings={"nps_property": ""}
    )
    assert HubSpotMapping._nps_property(hub_ctx, {}) is None  # "" switches NPS off
    with pytest.raises(ConfigError, match="timeline.stripe.metadata_keys"):
        MappingContext(
            store=store,
            connection="stripe",
            mapping=StripeMapping(),
            settings={"metadata_keys": "x"},
        )
