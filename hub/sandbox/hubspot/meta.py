"""HubSpot fake: portal metadata a generic client reads first (custom-object schemas, pipelines).

- ``GET /crm/v3/schemas``: ``{"results": []}`` (a portal without custom objects);
  ``GET /crm/v3/schemas/{objectType}`` of anything is a 404 ``OBJECT_NOT_FOUND``.
- ``GET /crm/v3/pipelines/{deals|tickets}``: the default pipeline with its stages, in the
  API's shape (``id``, ``label``, ``displayOrder``, ``stages[]`` with ``metadata``).
"""

from __future__ import annotations

from typing import Any

import httpx

from hub.sandbox.base import json_response
from hub.sandbox.hubspot.common import endpoint
from hub.sandbox.hubspot.schema import EPOCH, PIPELINE_STAGES, iso_ms

_CREATED = iso_ms(int((EPOCH.replace(year=2019) - EPOCH).total_seconds() * 1000))
_TICKET_STAGES = [("1", "New", "OPEN"), ("2", "Waiting on contact", "OPEN"),
                  ("3", "Waiting on us", "OPEN"), ("4", "Closed", "CLOSED")]  # fmt: skip


def _stage(sid: str, label: str, order: int, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": sid,
        "label": label,
        "displayOrder": order,
        "metadata": metadata,
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "archived": False,
    }


def _pipelines(otype: str) -> list[dict[str, Any]] | None:
    if otype == "deals":
        stages = [
            _stage(
                s,
                s.replace("closedwon", "Closed won").replace("closedlost", "Closed lost"),
                i,
                {
                    "isClosed": str(s.startswith("closed")).lower(),
                    "probability": "1.0"
                    if s == "closedwon"
                    else "0.0"
                    if s == "closedlost"
                    else "0.5",
                },
            )
            for i, s in enumerate(PIPELINE_STAGES)
        ]
        pid, label = "default", "Sales Pipeline"
    elif otype == "tickets":
        stages = [
            _stage(
                sid, label, i, {"ticketState": state, "isClosed": str(state == "CLOSED").lower()}
            )
            for i, (sid, label, state) in enumerate(_TICKET_STAGES)
        ]
        pid, label = "0", "Support Pipeline"
    else:
        return None
    return [
        {
            "id": pid,
            "label": label,
            "displayOrder": 0,
            "stages": stages,
            "createdAt": _CREATED,
            "updatedAt": _CREATED,
            "archived": False,
        }
    ]


class _Meta:
    """Custom-object schemas (none) and pipelines."""

    @endpoint("GET", r"/crm/v3/schemas/?")
    def list_schemas(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"results": []})

    @endpoint("GET", r"/crm/v3/schemas/(?P<otype>[^/]+)")
    def read_schema(self, request: httpx.Request, otype: str) -> httpx.Response:
        raise self._reject(
            404, f"Unable to find object schema for {otype}", category="OBJECT_NOT_FOUND"
        )

    @endpoint("GET", r"/crm/v3/pipelines/(?P<otype>[^/]+)/?")
    def list_pipelines(self, request: httpx.Request, otype: str) -> httpx.Response:
        found = _pipelines(self._type(otype))
        if found is None:
            raise self._reject(
                400, f"Object type {otype} does not support pipelines", category="VALIDATION_ERROR"
            )
        return json_response(200, {"results": found})

    @endpoint("GET", r"/crm/v3/pipelines/(?P<otype>[^/]+)/(?P<pid>[^/]+)")
    def read_pipeline(self, request: httpx.Request, otype: str, pid: str) -> httpx.Response:
        found = [p for p in (_pipelines(self._type(otype)) or []) if p["id"] == pid]
        if not found:
            raise self._reject(404, f"Pipeline {pid} does not exist", category="OBJECT_NOT_FOUND")
        return json_response(200, found[0])
