"""hub: a customer-success integration hub.

Pulls signals from Zendesk, Stripe, HubSpot and BuiltWith into one SQLite database, builds a
timeline per customer, scores health and writes the result back to HubSpot. Everything a
source does is a pluggy plugin; see ``PLUGINS.md``.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("hub")
"""Marker for plugin hook implementations: ``@hub.hookimpl``."""

__all__ = ["__version__", "hookimpl"]
