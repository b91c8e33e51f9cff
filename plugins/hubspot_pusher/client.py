"""HubSpot API calls the pusher shares: reads of associations and records, the marker
search, and reading 207 multi-status answers per record.

Requests go through the ``Pusher`` base class (``read``/``write``) on the client the push
core built from the HubSpot connection, so auth and rate budget are the connection's.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from hub.push import Pusher

READ_CHUNK = 100
MARKER_RE = re.compile(r"hubtask[0-9a-f]{20}")

# Per-record error categories in a 207 that are worth sending again.
RETRIABLE_CATEGORIES = {
    "RATE_LIMITS",
    "RATE_LIMIT",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
    "TEMPORARILY_UNAVAILABLE",
    "TIMEOUT",
    "LOCKED",
}


def marker_for(task_id: str) -> str:
    """The token that identifies a hub task in HubSpot (one search token, letters and digits)."""
    return f"hubtask{task_id}"


def marker_in(record: dict[str, Any]) -> str | None:
    """The hub marker in a task record's body, if any."""
    found = MARKER_RE.search(str((record.get("properties") or {}).get("hs_task_body") or ""))
    return found.group(0) if found else None


class HubSpotApi(Pusher):
    """Reads shared by the pusher's parts (all idempotent: retried freely)."""

    def associated_ids(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        """Ids of ``to_type`` records associated with one record (v4, every page)."""
        ids: list[str] = []
        params: dict[str, Any] = {"limit": 500}
        for _ in range(1000):
            response = self.read(
                "GET",
                f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}",
                params=params,
            )
            body = response.json()
            ids.extend(str(r["toObjectId"]) for r in body.get("results", []))
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
            params = {"limit": 500, "after": after}
        return ids

    def batch_read(
        self, object_type: str, ids: list[str], properties: list[str]
    ) -> list[dict[str, Any]]:
        """Records by id, 100 per request; ``errors`` of each answer are returned as records
        ``{"_error": error}`` so callers see missing ones."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), READ_CHUNK):
            response = self.read(
                "POST",
                f"/crm/v3/objects/{object_type}/batch/read",
                json={
                    "inputs": [{"id": i} for i in ids[start : start + READ_CHUNK]],
                    "properties": properties,
                },
            )
            body = response.json()
            out.extend(body.get("results") or [])
            out.extend({"_error": e} for e in body.get("errors") or [])
        return out

    def search_marker(self, marker: str) -> str | None:
        """The id of the task whose body carries ``marker`` (search; its index may lag)."""
        response = self.read(
            "POST",
            "/crm/v3/objects/tasks/search",
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "hs_task_body",
                                "operator": "CONTAINS_TOKEN",
                                "value": marker,
                            }
                        ]
                    }
                ],
                "properties": ["hs_task_body"],
                "limit": 10,
            },
        )
        for record in response.json().get("results", []):
            if marker_in(record) == marker:
                return str(record["id"])
        return None


def by_message(failures: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for cid, message in failures.items():
        grouped.setdefault(message, []).append(cid)
    return grouped


def parse_batch(
    response: httpx.Response, pending: dict[str, dict[str, str]]
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(succeeded ids, retriable failures id → message, other failures id → message)."""
    if response.status_code != 207:
        return list(pending), {}, {}
    body = response.json()
    retry: dict[str, str] = {}
    failed: dict[str, str] = {}
    unattributed: list[dict[str, Any]] = []
    for error in body.get("errors") or []:
        ids = [str(i) for i in (error.get("context") or {}).get("ids") or []]
        category = str(error.get("category") or "")
        message = f"{category}: {error.get('message') or 'failed'}"
        if not ids:
            unattributed.append(error)
            continue
        for cid in ids:
            if cid not in pending:
                continue
            (retry if category in RETRIABLE_CATEGORIES else failed)[cid] = message
    succeeded = [cid for cid in pending if cid not in retry and cid not in failed]
    if unattributed:
        # An error that names no record: trust only the records the results list.
        listed = {str(r.get("id")) for r in body.get("results") or []}
        category = str(unattributed[0].get("category") or "")
        message = f"{category}: {unattributed[0].get('message') or 'failed'}"
        for cid in [c for c in succeeded if c not in listed]:
            (retry if category in RETRIABLE_CATEGORIES else failed)[cid] = message
        succeeded = [c for c in succeeded if c in listed]
    return succeeded, retry, failed
