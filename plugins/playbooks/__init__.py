"""The built-in playbooks: the follow-ups a CSM should get from the hub's signals.

Each class is one rule over health scores, account facts and timeline events (names from
``hub.vocabulary``), grouped by what they watch: ``health`` (band, score, renewal,
expansion), ``billing`` (payments per invoice, card, payment method, churn follow-up),
``product`` (competitor, widget, first value, unsubscribes) and ``touch`` (an account at risk
with no two-way CSM touch lately). Every one is configured in hub.toml
``[playbooks.<name>]`` (``enabled``, ``due_in_days``, ``priority``, ``snooze_days``,
``subject``, ``body`` and the thresholds in its ``options``) and can be switched off.

Reasons (the dedupe key within account + playbook) are stable for conditions that persist
("red", "score_drop") so a condition opens one task however long it lasts, and specific for
distinct problems ("invoice in_123", "card 2026-12", "competitor intercom") so a new problem
gets its own task even while an older one is snoozed.
"""

from __future__ import annotations

from typing import Any

import hub
from plugins.playbooks.billing import BillingMissing, CardExpiring, ChurnFollowup, PaymentFailed
from plugins.playbooks.health import BandRed, Expansion, RenewalAtRisk, ScoreDrop
from plugins.playbooks.product import (
    CompetitorDetected,
    NoFirstValue,
    UnsubscribeBurst,
    WidgetRemoved,
)
from plugins.playbooks.touch import NoRecentTouch

BUILTIN_PLAYBOOKS = [
    BandRed,
    ScoreDrop,
    PaymentFailed,
    CardExpiring,
    BillingMissing,
    CompetitorDetected,
    WidgetRemoved,
    RenewalAtRisk,
    ChurnFollowup,
    NoFirstValue,
    Expansion,
    UnsubscribeBurst,
    NoRecentTouch,
]


@hub.hookimpl
def register_playbooks(register: Any) -> None:
    for cls in BUILTIN_PLAYBOOKS:
        register(cls)


__all__ = ["BUILTIN_PLAYBOOKS", "register_playbooks", *(c.__name__ for c in BUILTIN_PLAYBOOKS)]
