"""Checking up front that the HubSpot token may do what the configured push will do.

``check_access()`` (the pusher contract's hook for ``hub check`` and ``hub push --dry-run``)
works out the scopes the push needs from ``[push]`` (health fields: companies and their
property definitions; tasks: HubSpot files tasks under the contacts scopes; associations to
deals) and asks HubSpot's token-information endpoint which ones the token has. That endpoint
knows private-app tokens and service keys; for any other bearer token (an OAuth access
token) each write endpoint is probed with an empty batch, which HubSpot refuses with
``MISSING_SCOPES`` when the scope is missing and which writes nothing when it is not.
"""

from __future__ import annotations

from typing import Any

from hub.errors import FatalAPIError
from plugins.hubspot_pusher.client import HubSpotApi

TOKEN_INFO = "/oauth/v2/private-apps/get/access-token-info"

# scope → (method, path) of a harmless request that needs it (an empty batch writes nothing).
PROBES = {
    "crm.objects.companies.write": ("POST", "/crm/v3/objects/companies/batch/update"),
    "crm.schemas.companies.write": ("POST", "/crm/v3/properties/companies/batch/create"),
    "crm.objects.contacts.write": ("POST", "/crm/v3/objects/tasks/batch/create"),
}


class Access(HubSpotApi):
    """The ``check_access`` hook of the HubSpot pusher."""

    def required_scopes(self) -> dict[str, str]:
        """scope → what the configured push needs it for."""
        push = self.ctx.settings
        needed: dict[str, str] = {}
        if push.properties:
            needed["crm.objects.companies.read"] = "reading the health fields back"
            needed["crm.objects.companies.write"] = "writing the health fields"
            needed["crm.schemas.companies.write"] = "creating the hub's company properties"
        if push.tasks:
            needed["crm.objects.contacts.read"] = "reading tasks back (tasks use contact scopes)"
            needed["crm.objects.contacts.write"] = "creating tasks (tasks use contact scopes)"
        return needed

    def check_access(self) -> list[str]:
        needed = self.required_scopes()
        if not needed:
            return []
        granted = self._granted_scopes()
        if granted is None:
            missing = self._probe_missing([s for s in needed if s in PROBES])
        else:
            missing = [s for s in needed if s not in granted]
        return [
            f"the token lacks {scope} (needed for {needed[scope]}): add it to the "
            "service key (or legacy private app) in HubSpot (Settings → Integrations)"
            for scope in missing
        ]

    def _token(self) -> str:
        from hub.sync import build_connector

        settings: Any = build_connector(self.ctx.config, self.connection).settings
        return settings.access_token.get_secret_value()

    def _granted_scopes(self) -> set[str] | None:
        """The token's scopes per HubSpot, or None when it is not a private-app/service key."""
        try:
            response = self.read("POST", TOKEN_INFO, json={"tokenKey": self._token()})
        except FatalAPIError as exc:
            if exc.status in (400, 401, 403, 404):
                return None
            raise
        scopes = response.json().get("scopes")
        return {str(s) for s in scopes} if isinstance(scopes, list) else None

    def _probe_missing(self, scopes: list[str]) -> list[str]:
        missing = []
        for scope in scopes:
            method, path = PROBES[scope]
            try:
                self.read(method, path, json={"inputs": []})
            except FatalAPIError as exc:
                if exc.status == 403:
                    missing.append(scope)
        return missing
