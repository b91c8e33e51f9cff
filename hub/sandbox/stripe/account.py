"""Stripe fake: the account itself, the API versions Stripe accepts, and includable lists.

- ``GET /v1/account`` and ``GET /v1/accounts/{id}`` (the same account; another id is a 404
  ``resource_missing`` as for a connected account this key cannot see).
- ``Stripe-Version`` must name a real version (``KNOWN_VERSIONS``); anything else is a 400
  ``Invalid Stripe API version`` like Stripe's.
- Includable lists (not in the object unless expanded, as since 2020-08-27): a customer's
  ``sources``, ``subscriptions`` and ``tax_ids``; an invoice's ``payments``; a charge's
  ``refunds`` (since 2022-11-15); a plan's ``tiers`` (``plan.tiers``, tiered plans only); a
  subscription's ``discounts`` (ids unless expanded).
"""

from __future__ import annotations

from typing import Any

import httpx

from hub.sandbox.base import json_response, route
from hub.sandbox.stripe.constants import CURRENT_API_VERSION, LEGACY_API_VERSION
from hub.sandbox.stripe.protocol import _ApiError, _missing

# Versions Stripe has released (a selection of the dated ones clients pin, and every named
# release since acacia); the fake's current version is always accepted.
KNOWN_VERSIONS = frozenset(
    {
        "2015-10-16", "2016-07-06", "2017-05-25", "2017-08-15", "2018-02-06", "2018-02-28",
        "2018-05-21", "2018-09-24", "2018-11-08", "2019-02-19", "2019-05-16", "2019-08-14",
        "2019-09-09", "2019-10-08", "2019-11-05", "2019-12-03", "2020-03-02", "2020-08-27",
        "2022-08-01", "2022-11-15", "2023-08-16", "2023-10-16", "2024-04-10", "2024-06-20",
        "2024-09-30.acacia", "2024-10-28.acacia", "2024-11-20.acacia", "2024-12-18.acacia",
        "2025-01-27.acacia", "2025-02-24.acacia", "2025-03-31.basil", "2025-04-30.basil",
        "2025-05-28.basil", "2025-06-30.basil", "2025-07-30.basil", "2025-08-27.basil",
        "2025-09-30.clover", "2025-10-29.clover", LEGACY_API_VERSION, CURRENT_API_VERSION,
    }
)  # fmt: skip
INCLUDABLE = {
    "customer": {"sources", "subscriptions", "tax_ids"},
    "invoice": {"payments"},
    "charge": {"refunds"},
    # A plan's ``tiers`` (tiered billing only), wherever the legacy ``plan`` is embedded.
    "subscription": {"plan.tiers", "discounts"},
}


class _Account:
    """The account endpoints and includable lists."""

    def _render_account(self) -> dict[str, Any]:
        created = int(self.world.start.timestamp()) - 900 * 86400
        return {
            "id": f"acct_{self._tag}Lumen",
            "object": "account",
            "business_profile": {
                "mcc": "5734",
                "name": "Lumen",
                "product_description": "Customer messaging widget",
                "support_email": "billing@lumen.example",
                "support_phone": None,
                "support_url": None,
                "url": "https://lumen.example",
            },
            "business_type": "company",
            "capabilities": {"card_payments": "active", "transfers": "active"},
            "charges_enabled": True,
            "country": "US",
            "created": created,
            "default_currency": "usd",
            "details_submitted": True,
            "email": "billing@lumen.example",
            "external_accounts": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/accounts/acct_{self._tag}Lumen/external_accounts",
            },
            "future_requirements": {"currently_due": [], "eventually_due": [], "past_due": []},
            "metadata": {},
            "payouts_enabled": True,
            "requirements": {
                "currently_due": [],
                "disabled_reason": None,
                "eventually_due": [],
                "past_due": [],
            },
            "settings": {
                "dashboard": {"display_name": "Lumen", "timezone": "Etc/UTC"},
                "payments": {"statement_descriptor": "LUMEN"},
            },
            "tos_acceptance": {"date": created},
            "type": "standard",
        }

    @route("GET", r"/v1/account", "get_account")
    def get_account(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, self._render_account())

    @route("GET", r"/v1/accounts/(?P<obj_id>[^/]+)", "get_accounts")
    def get_accounts(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        account = self._render_account()
        if obj_id != account["id"]:
            return self._fail(_missing_account(obj_id))
        return json_response(200, account)

    def _includable(self, kind: str, body: dict[str, Any], name: str, legacy: bool) -> None:
        """Fill an includable list asked for with ``expand[]``."""
        if name == "plan.tiers":
            plan = body.get("plan")
            if isinstance(plan, dict) and plan.get("billing_scheme") == "tiered":
                plan.setdefault("tiers", [])
            return
        if kind == "subscription" and name == "discounts":
            sub = self._store["subscription"].get(body.get("id"))
            found = self._discount_object(sub) if sub is not None else None
            body["discounts"] = [found] if found else []
            return
        if kind == "charge":
            body.setdefault(
                "refunds",
                {
                    "object": "list",
                    "data": [],
                    "has_more": False,
                    "total_count": 0,
                    "url": f"/v1/charges/{body.get('id')}/refunds",
                },
            )
            return
        if kind == "invoice":
            inv = self._store["invoice"].get(body.get("id"))
            if inv is not None:
                body["payments"] = self._invoice_payments_list(inv)
            return
        cus_id = body.get("id")
        data: list[dict[str, Any]] = []
        if name == "subscriptions":
            subs = self._store["subscription"]
            data = [
                self._render("subscription", subs[s], legacy)
                for s in reversed(self._by_customer["subscription"].get(cus_id, []))
                if subs[s].status not in ("canceled", "incomplete_expired")
            ]
        body[name] = {
            "object": "list",
            "data": data,
            "has_more": False,
            "total_count": len(data),
            "url": f"/v1/customers/{cus_id}/{name}",
        }


def _missing_account(obj_id: str) -> _ApiError:
    return _missing("account", obj_id, param="account")
