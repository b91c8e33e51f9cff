"""``[health]`` configuration: one-line errors naming the key, and the example models in
config.example.toml (the telephony-style and the CS-platform-style points models) parse and
compute from hub.toml alone."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_health)

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.health import compute_health, explain, load_settings
from plugins.health_models import MEASURES
from tests.test_health import (  # noqa: F401 (clk, db: fixtures)
    NOW,
    add_account,
    add_event,
    clk,
    config,
    db,
    score_row,
    solved,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


@pytest.mark.parametrize(
    ("health", "where", "words"),
    [
        ({"modle": "x"}, "unknown key health.modle", "hub init --example"),
        ({"bands": {"green": 170}}, "health.bands", "outside 0..100"),
        ({"drivers": 0}, "health.drivers", "greater than or equal to 1"),
        ({"measures": {"suport": {}}}, "health.measures.suport", "unknown measure 'suport'"),
        (
            {"measures": {"support": {"target_hour": 8}}},
            "unknown key health.measures.support.target_hour",
            "check the spelling",
        ),
        (
            {"measures": {"support": {"target_hours": -1}}},
            "health.measures.support.target_hours",
            "greater than 0",
        ),
        (
            {"models": {"m": {"weights": {"billing": 1, "csat": -2}}}},
            "health.models.m.weights.csat",
            "negative",
        ),
        (
            {"models": {"m": {"weights": {"biling": 1}}}},
            "health.models.m.weights.biling",
            "unknown measure 'biling'",
        ),
        ({"models": {"m": {"type": "neural"}}}, "health.models.m.type", "unknown model type"),
        (
            {"models": {"m": {"type": "points", "min": 10, "max": 0}}},
            "health.models.m.max",
            "must be above min",
        ),
        (
            {
                "models": {
                    "m": {
                        "type": "points",
                        "rules": [{"input": "csat.ratio", "below": 0.5}],
                    }
                }
            },
            "health.models.m.rules.0",
            "points",
        ),
        (
            {
                "models": {
                    "m": {
                        "type": "points",
                        "rules": [
                            {
                                "input": "csat.ratio",
                                "below": 0.5,
                                "tiers": [{"below": 1, "points": 1}],
                            }
                        ],
                    }
                }
            },
            "health.models.m.rules.0",
            "not both",
        ),
        (
            {
                "models": {
                    "m": {
                        "type": "points",
                        "rules": [{"input": "csat.ratoi", "below": 1, "points": 1}],
                    }
                }
            },
            "health.models.m.rules.0.input",
            "has no input 'ratoi'",
        ),
        (
            {
                "models": {
                    "m": {"weights": {"csat": 1}, "caps": [{"input": "x.y", "above": 1, "max": 5}]}
                }
            },
            "health.models.m.caps.0.input",
            "unknown measure 'x'",
        ),
        (
            {"segments": [{"name": "big", "model": "enterprise"}]},
            "health.segments.0.model",
            "unknown model 'enterprise'",
        ),
        ({"model": "nope"}, "health.model", "unknown model 'nope'"),
        (
            {"models": {"m": {"type": "points", "bands": {"green": 70}}}},
            "health.models.m.bands",
            "outside 0..10 points",
        ),
    ],
)
def test_config_errors_are_one_line_and_name_the_key(health, where, words):
    with pytest.raises(ConfigError) as exc:
        load_settings(config(health))
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith("hub.toml: ")
    assert where in text, text
    assert words in text, text


def _example_blocks() -> dict[str, dict]:
    text = EXAMPLE.read_text()
    blocks = re.findall(r"# --- example: ([^\n]+) ---\n(.*?)# --- end example ---", text, re.S)
    assert len(blocks) == 2, "config.example.toml should carry the two points-model examples"
    out = {}
    for title, body in blocks:
        toml = "\n".join(
            line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines()
        )
        out[title] = tomllib.loads(toml)["health"]["models"]
    return out


def test_example_config_health_section_is_valid():
    with EXAMPLE.open("rb") as fh:
        data = tomllib.load(fh)
    from hub.config import parse_config

    settings = load_settings(parse_config(data))
    assert settings.section.model == "default" and settings.bands == {
        "green": 80,
        "yellow": 40,
        "red": 0,
    }
    assert settings.section.min_coverage == 0.5
    assert settings.section.churned_stages == ["former_customer", "churned"]


def test_example_config_documents_every_measure_parameter():
    text = EXAMPLE.read_text()
    section = text[text.index("[health]") :]
    for measure in MEASURES:
        assert f"[health.measures.{measure.name}]" in section
        for field in measure.Params.model_fields:
            assert re.search(
                rf"^# {field} =|^# \[health\.measures\.{measure.name}\.{field}\]", section, re.M
            ), f"config.example.toml does not document {measure.name}.{field}"
    for key in (
        "model =",
        "drivers =",
        "workers =",
        "[health.bands]",
        "[[health.segments]]",
        "mrr_at_least",
        "mrr_below",
        "plan =",
        "lifecycle_stage =",
        "caps",
        "tiers",
        "base =",
        "min =",
        "max =",
        "bands =",
    ):
        assert key in section, key


def test_both_example_points_models_parse_and_compute(db, clk):
    models = _example_blocks()
    telephony = models["telephony points model"]
    platform = models["CS platform default points model"]
    cfg = config({"models": {**telephony, **platform}, "model": "telephony"})
    settings = load_settings(cfg)
    assert {"telephony", "cs_platform"} <= set(settings.models)

    # Healthy: promoter, fast tickets, all good ratings, paid, widget present, growing.
    add_account(
        db,
        "fine",
        nps=10,
        widget_present=True,
        competitors=[],
        has_payment_method=True,
        last_touch="2026-11-10T00:00:00Z",
        contacts_total=10,
        contacts_unsubscribed=0,
    )
    solved(db, "fine", [2, 3, 4, 5])
    for _ in range(5):
        add_event(db, "fine", "csat_good", 3)
    add_event(db, "fine", "invoice_paid", 10)
    add_event(db, "fine", "mrr_changed", 20, mrr_before=900, mrr_after=1000, delta=100)
    # Troubled: breaching tickets, bad ratings, failed payments, competitor, widget gone.
    add_account(
        db,
        "trouble",
        nps=3,
        widget_present=False,
        competitors=["Intercom"],
        has_payment_method=True,
        last_touch="2026-08-01T00:00:00Z",
        contacts_total=10,
        contacts_unsubscribed=5,
    )
    solved(db, "trouble", [50, 70, 90, 10])
    add_event(db, "trouble", "ticket_urgent", 2, ticket_id=999)
    for kind in ("csat_bad", "csat_bad", "csat_good"):
        add_event(db, "trouble", kind, 3)
    for days in (5, 12, 20):
        add_event(db, "trouble", "payment_failed", days)
    add_event(db, "trouble", "subscription_downgraded", 15, mrr_before=1200, mrr_after=1000)

    compute_health(db, cfg)
    fine, trouble = score_row(db, "fine"), score_row(db, "trouble")
    # telephony: fine = 5 + 1 (CSAT ≥ 95%) + 1 (MRR +11%) + 1 (promoter) = 8 → 80, green
    assert (fine["model"], fine["score"], fine["band"]) == ("telephony", 80, "green")
    # trouble = 5 − 2 (75% breach) − 2 (CSAT 33%) − 2 (3 failed payments) − 1 (competitor)
    #           − 1 (widget gone) − 1 (MRR −17%) − 1 (detractor) − 1 (111 days) = −6 → 0
    assert (trouble["score"], trouble["band"]) == (0, "red")
    data = explain(db, "trouble", cfg)
    assert data["details"]["points_raw"] == -6 and data["details"]["points"] == 0
    assert any("breaching the response target" in d for d in trouble["drivers"])

    cfg2 = config({"models": {**telephony, **platform}, "model": "cs_platform"})
    compute_health(db, cfg2)
    fine, trouble = score_row(db, "fine"), score_row(db, "trouble")
    assert (fine["model"], fine["score"], fine["band"]) == ("cs_platform", 100, "green")
    # 100 − 15 (urgent) − 15 (CSAT) − 10 (median 60 h) − 30 (3 invoices failing: −10 × 3,
    # at most −30) − 15 (competitor) − 20 (widget) − 5 − 10 (111 days) − 10 (downgrade)
    # = −30 → clamped to 0
    assert (trouble["score"], trouble["band"]) == (0, "red")
    data = explain(db, "trouble", cfg2)
    assert data["details"]["points_raw"] == -30
    linear = next(r for r in data["details"]["rules"] if r["on"] == "billing.payment_failed")
    assert (linear["value"], linear["points"], linear["held"]) == (3, -30, "-10 × 3")


def test_weights_may_be_fractional_and_measure_overrides_apply_per_model(db, clk):
    cfg = config(
        {
            "measures": {"support": {"target_hours": 24}},
            "models": {
                "strict": {
                    "weights": {"support": 0.5},
                    "measures": {"support": {"target_hours": 4}},
                }
            },
            "segments": [{"name": "vip", "model": "strict", "plan": "enterprise"}],
        }
    )
    add_account(db, "vip", plan="enterprise")
    add_account(db, "std", plan="growth")
    for aid in ("vip", "std"):
        solved(db, aid, [8])
    compute_health(db, cfg)
    # vip: 8 h vs 4 h target, 0 at 12 h → the ticket scores (12 − 8) / (12 − 4) = 50,
    # smoothed with 2 imaginary tickets at 100: (50 + 200) / 3 = 83.33; std: under 24 h → 100
    assert score_row(db, "vip")["measures"]["support"] == {"score": 83.33, "weight": 0.5}
    assert score_row(db, "std")["measures"]["support"]["score"] == 100.0
    assert explain(db, "vip", cfg)["measures"][0]["params"]["target_hours"] == 4
    assert NOW.year == 2026
