"""HubSpot fake: the ``HubSpotAPI`` class (state and budgets) assembled from its parts."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from hub.sandbox.base import (
    FakeAPI,
    rng_for,
)
from hub.sandbox.hubspot.associations import _Associations
from hub.sandbox.hubspot.common import _CLIENT_FAULTS, _Obj, _Window
from hub.sandbox.hubspot.guard import _Guard
from hub.sandbox.hubspot.inspection import _Inspection
from hub.sandbox.hubspot.legacy import LEGACY_PREFIXES, _Legacy
from hub.sandbox.hubspot.meta import _Meta
from hub.sandbox.hubspot.objects import _Objects
from hub.sandbox.hubspot.properties import _Properties
from hub.sandbox.hubspot.schema import (
    ASSOC_TYPES,
    STANDARD_GROUPS,
    TYPES,
    standard_properties,
)
from hub.sandbox.hubspot.search import _Search
from hub.sandbox.hubspot.seeding import _Seeding
from hub.sandbox.hubspot.storage import _Storage
from hub.sandbox.hubspot.tokens import Token, _Tokens
from hub.sandbox.hubspot.touches import _Touches
from hub.sandbox.hubspot.unmodelled import _Unmodelled
from hub.sandbox.hubspot.validation import _Validation


class HubSpotAPI(
    _Unmodelled,
    _Inspection,
    _Seeding,
    _Associations,
    _Properties,
    _Search,
    _Objects,
    _Validation,
    _Storage,
    _Tokens,
    _Touches,
    _Meta,
    _Legacy,
    _Guard,
    FakeAPI,
):
    """The fake HubSpot CRM; see the module docstring for what it models."""

    name = "hubspot"
    seed_rank = 0  # seeding is the id plan and the traps: companies are made on first use
    fault_kinds = frozenset({*_CLIENT_FAULTS, "partial_207", "missing_scope"})
    prefixes = ("/crm/", "/oauth/", *LEGACY_PREFIXES)

    def __init__(self, sandbox: Any):
        super().__init__(sandbox)
        from hub.sandbox.world import CREDENTIALS

        self.token = CREDENTIALS["hubspot"]["access_token"]
        # Bearer tokens the portal accepts (service keys, private-app tokens) and their
        # scopes; ``issue_token`` adds one. The default token has every scope.
        self.tokens: dict[str, Token] = {self.token: Token()}
        # Calls, e-mails, meetings and notes need their own scopes (crm.objects.calls.read…);
        # False: an older portal where the contact scopes govern them.
        self.granular_activity_scopes = True
        self.search_cap = 10_000  # results reachable per search query; lower it in tests
        self.daily_limit = 250_000
        self.search_per_second = 5
        self._burst = _Window(100, 10.0 * sandbox.time_scale)
        self._search = _Window(self.search_per_second, 1.0 * sandbox.time_scale)
        self._daily: tuple[dt.date | None, int] = (None, 0)
        self._tl = threading.local()
        self._corr = rng_for(self.world.seed, "hubspot", "correlation")
        self.writes: list[tuple[str, str, Any]] = []
        self._store: dict[str, dict[int, _Obj]] = {t: {} for t in TYPES}
        self._active: dict[str, list[int]] = {t: [] for t in TYPES}
        self._archived: dict[str, list[int]] = {t: [] for t in TYPES}
        self._lm: dict[str, list[int]] = {t: [] for t in TYPES}
        self._next_id = {
            "companies": 9_000_000_001,
            "contacts": 100_001,
            "deals": 20_000_001,
            "tasks": 30_000_001,
            "calls": 40_000_001,
            "emails": 41_000_001,
            "meetings": 42_000_001,
            "notes": 43_000_001,
            "tickets": 44_000_001,
        }
        self._assoc: dict[tuple[str, str], dict[int, dict[int, tuple[int, ...]]]] = {
            pair: {} for pair in ASSOC_TYPES
        }
        self._props = standard_properties()
        # Archived ("recycling bin") property definitions and groups, restorable.
        self._archived_props: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        self._archived_groups: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        self._groups: dict[str, dict[str, dict[str, Any]]] = {
            t: {
                n: {"name": n, "label": lbl, "displayOrder": -1, "archived": False}
                for n, lbl in groups
            }
            for t, groups in STANDARD_GROUPS.items()
        }
        self._company_ids: list[int] = []  # world company key -> HubSpot id
        # Companies whose records are not made yet (``_Seeding._materialize``), how many,
        # and whether the modification-time index ``_lm`` is built (it is once all are).
        self._pending = bytearray()
        self._left = 0
        self._scattered = 0  # companies made by reads by id (``_lazy_get``)
        self._lm_ready = True
        self._renewal_deal: dict[int, int] = {}  # company key -> open renewal deal id
