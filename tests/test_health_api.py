"""The health package's public surface: re-exports, ``validate_config``, the measure test
helpers of ``hub.testing.measures``, module sizes, and no vendor names in the engine."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import hub.health
from hub.errors import ConfigError
from hub.health import validate_config
from hub.testing.measures import MeasureCase, event, score_measure
from plugins.health_models import BillingMeasure, CsatMeasure, SupportMeasure

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_imports_from_hub_health():
    for name in hub.health.__all__:
        assert getattr(hub.health, name) is not None, name
    assert hub.health.__all__ == sorted(hub.health.__all__, key=lambda n: (not n.isupper(), n))


@pytest.mark.parametrize("package", ["hub/health", "plugins/health_models"])
def test_modules_stay_small_and_say_what_they_are_for(package):
    for path in sorted((ROOT / package).glob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) <= 600, path
        assert text.lstrip().startswith('"""'), f"{path} has no docstring"


def test_the_engine_names_no_vendor():
    pattern = re.compile(r"zendesk|stripe|hubspot|builtwith", re.IGNORECASE)
    for path in sorted((ROOT / "hub/health").glob("*.py")):
        found = pattern.search(path.read_text())
        assert found is None, f"{path.name} names {found.group(0)}"


def test_validate_config_accepts_a_valid_section_and_refuses_a_typo_in_one_line():
    assert validate_config(SimpleNamespace(health={"bands": {"green": 75, "red": 0}})) is None
    assert validate_config(SimpleNamespace(health=None)) is None
    with pytest.raises(ConfigError) as caught:
        validate_config(
            SimpleNamespace(health={"measures": {"billing": {"windw_days": 3}}}, path="hub.toml")
        )
    text = str(caught.value)
    assert "\n" not in text
    assert "health.measures.billing.windw_days" in text


def test_measure_case_scores_through_the_real_aggregation():
    # Billing: 100 − 25 per failed payment; two failures on two invoices → 100 − 2 × 25 = 50.
    case = MeasureCase(
        events=[
            event("payment_failed", 3, invoice_id="in_1"),
            event("payment_failed", 1, invoice_id="in_2"),
        ],
        facts={"has_payment_method": True},
        mrr=500,
    )
    result = case.score(BillingMeasure)
    assert result.value == 50
    assert result.value_h == 5000
    assert result.inputs["payment_failed"] == 2
    # CSAT: good / (good + bad) = 2 / 3 = 66.666… → stated 66.67 (hundredths 6667).
    csat = score_measure(
        CsatMeasure, events=[event("csat_good", 1), event("csat_good", 2), event("csat_bad", 3)]
    )
    assert csat.value_h == 6667
    # Outside the window: nothing counts, no data.
    old = score_measure(SupportMeasure, events=[event("ticket_solved", 200, resolution_hours=5)])
    assert old.value is None


def test_measure_case_refuses_unknown_params_and_columns():
    with pytest.raises(ConfigError, match="health.measures.csat.window"):
        score_measure(CsatMeasure, params={"window": 3})
    with pytest.raises(TypeError, match="facts="):
        MeasureCase(nps=9)
