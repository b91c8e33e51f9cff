"""Built-in health measures and models, registered like any third-party plugin.

Measures (each 0–100 or no data; every parameter is set in ``[health.measures.<name>]`` or per
model in ``[health.models.<model>.measures.<name>]``):

- ``support``         median resolution hours of tickets solved in the window vs a target
- ``support_load``    urgent/escalated tickets still open, share of solved tickets reopened
- ``csat``            good / (good + bad) satisfaction ratings in the window
- ``nps``             the account's NPS fact (0–10), promoters high, detractors low
- ``billing``         failed payments, late and past-due invoices, card expiring, no payment method
- ``engagement``      share of the account's contacts unsubscribed, recent unsubscribes
- ``technographics``  our widget present on the site, competitors detected
- ``relationship``    days since the last two-way CSM touch and touches per 30 days, against
                      targets by segment; owner assigned
- ``growth``          MRR trend and seats over the window, downgrades, cancellation
- ``lifecycle``       renewal coming up (or lapsed)

Models: ``weighted`` (Σ weight·measure / Σ weight of measures with data, optional caps) and
``points`` (base ± rule points, clamped, bands on the points, scaled to 0–100). See
``hub.health`` for the engine and the rounding rule; each measure lives in its own module of
this package.
"""

from __future__ import annotations

import hub
from plugins.health_models.billing import BillingMeasure
from plugins.health_models.engagement import (
    EngagementMeasure,
    RelationshipMeasure,
    TechnographicsMeasure,
)
from plugins.health_models.growth import GrowthMeasure, LifecycleMeasure
from plugins.health_models.points import PointsModel
from plugins.health_models.support import (
    CsatMeasure,
    NpsMeasure,
    SupportLoadMeasure,
    SupportMeasure,
)
from plugins.health_models.weighted import WeightedModel

MEASURES = (
    SupportMeasure,
    SupportLoadMeasure,
    CsatMeasure,
    NpsMeasure,
    BillingMeasure,
    EngagementMeasure,
    TechnographicsMeasure,
    RelationshipMeasure,
    GrowthMeasure,
    LifecycleMeasure,
)
MODELS = (WeightedModel, PointsModel)


@hub.hookimpl
def register_health_models(register):
    for cls in (*MEASURES, *MODELS):
        register(cls)


__all__ = [
    "MEASURES",
    "MODELS",
    "PointsModel",
    "WeightedModel",
    *(cls.__name__ for cls in MEASURES),
]
