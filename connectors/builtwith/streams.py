"""The BuiltWith ``domains`` stream: one raw row per looked-up domain.

BuiltWith has no list endpoint; the hub decides what to look up. The domains come from the
host (``ctx.account_domains()``: the known accounts' domains, free-mail providers excluded)
plus ``settings.domains``. The framework's ``BatchedLookup`` does the rest: 16 per request
(the multi-lookup maximum), never-seen domains first, then the stalest; a domain looked up
within ``freshness_days`` is skipped, which is what keeps credits from being spent twice. The
raw row's ``looked_up_at`` (also its ``updated_at`` column) is the per-domain bookmark, and
it commits with the page, so a killed run resumes with the domains it had not reached.

The connector only fetches: every technology is stored as BuiltWith reports it; which ones
are ours or a competitor's is the mapping's business (``[timeline.builtwith]``).
"""

from __future__ import annotations

import functools
from typing import Any

from hub import clock
from hub.connector import Stream, SyncContext, check_depth
from hub.errors import FatalAPIError, SkippableRecordError
from hub.http.client import json_of
from hub.http.replay import BatchedLookup, LookupResult
from hub.store import RawRecord
from hub.timeline.identity import FREEMAIL, normalize_domain

_OUT_OF_CREDITS = -3


@functools.lru_cache(maxsize=8192)
def _iso_cached(value: Any) -> str | None:
    parsed = clock.parse(value)
    return clock.iso(parsed) if parsed else None


def iso_of(value: Any) -> str | None:
    """A BuiltWith date (epoch milliseconds, or text) as ISO text; None when empty.

    Detection dates repeat across a lookup's technologies and domains (they fall on whole
    days), so the conversion is remembered: it was the largest per-record cost of a lookup."""
    if not value:
        return None
    if isinstance(value, (int, str)):
        return _iso_cached(value)
    return clock.iso(clock.parse(value))


def technology(tech: dict[str, Any], path: dict[str, Any]) -> dict[str, Any]:
    """One detected technology as stored (dates as given and as ISO text)."""
    first, last = tech.get("FirstDetected"), tech.get("LastDetected")
    return {
        "name": tech.get("Name"),
        "parent": tech.get("Parent"),
        "subdomain": path.get("SubDomain") or "",
        "url": path.get("Url") or "",
        "tag": tech.get("Tag"),
        "categories": tech.get("Categories") or [],
        "first_detected": first,
        "last_detected": last,
        "first_detected_at": iso_of(first),
        "last_detected_at": iso_of(last),
        # "yes"/"no" strings in JSON; accept a boolean too.
        "premium": str(tech.get("IsPremium")).lower() in ("yes", "true"),
    }


class DomainsStream(Stream):
    """Technology profile of each known domain (``GET /v{N}/api.json?LOOKUP=a,b,…``)."""

    name = "domains"
    primary_key = "domain"
    cursor_field = "looked_up_at"
    records_path = "Results"
    incremental = BatchedLookup(batch_size="batch_size", fresh_days="freshness_days")

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/{self.settings.api_version}/api.json"

    def lookup_keys(self, ctx: SyncContext) -> list[str]:
        extra = (normalize_domain(d) for d in self.settings.domains)
        return sorted({*ctx.account_domains(), *(d for d in extra if d and d not in FREEMAIL)})

    def to_row(self, item: dict[str, Any], looked_up_at: str) -> RawRecord:
        result = item.get("Result") or {}
        technologies = [
            technology(tech, path)
            for path in result.get("Paths") or []
            if isinstance(path, dict)
            for tech in path.get("Technologies") or []
            if isinstance(tech, dict)
        ]
        domain = normalize_domain(item.get("Lookup")) or str(item.get("Lookup"))
        data = {
            "domain": domain,
            "looked_up_at": looked_up_at,
            "api_version": self.settings.api_version,
            # IsDB was a boolean in older responses and the string "True" in newer ones.
            "is_db": str(result.get("IsDB")).lower() == "true",
            "spend": result.get("Spend"),
            "first_indexed": item.get("FirstIndexed"),
            "last_indexed": item.get("LastIndexed"),
            "last_indexed_at": clock.iso(clock.parse(item["LastIndexed"]))
            if item.get("LastIndexed")
            else None,
            "technologies": technologies,
        }
        return RawRecord(id=domain, data=data, updated_at=looked_up_at)

    def lookup(self, ctx: SyncContext, keys: list[str]) -> LookupResult:
        """One multi-lookup: answered domains, per-domain errors, out of credits."""
        response = ctx.client.get(self.path, params=self.connector.lookup_params(keys))
        body = json_of(response)
        now = clock.iso()
        result = LookupResult()
        items = body.get("Results") if isinstance(body, dict) else None
        for index, item in enumerate(items or [], 1):
            where = f"{self.name} record {index}"
            if not isinstance(item, dict) or not normalize_domain(item.get("Lookup")):
                ctx.skip(where, "no Lookup domain")
                continue
            try:
                check_depth(item)
            except SkippableRecordError as exc:
                ctx.skip(where, exc.message)
                continue
            result.records.append(self.to_row(item, now))
        for item in errors_of(body):
            lookup = normalize_domain(item.get("Lookup")) if isinstance(item, dict) else None
            message = (item.get("Message") if isinstance(item, dict) else str(item)) or "unknown"
            code = item.get("Code") if isinstance(item, dict) else None
            if code == _OUT_OF_CREDITS:
                result.stop = FatalAPIError(
                    "BuiltWith account is out of API credits part-way through this run (code -3)",
                    code="-3",
                    hint="buy credits or wait for the plan to renew; domains already looked up are kept",
                )
                continue
            if lookup:
                result.failed[lookup] = {"message": str(message)[:200], "code": code}
                ctx.log.info(
                    "%s: BuiltWith could not look up %s: %s", ctx.connection, lookup, message
                )
        return result

    def report(self, ctx: SyncContext, looked_up: int, skipped: list[str]) -> None:
        remaining = self.connector.credits_remaining
        tail = f"; {remaining} credits remaining" if remaining is not None else ""
        ctx.note(f"looked up {looked_up} domains ({looked_up} credits){tail}")
        if skipped:
            shown = ", ".join(skipped[:5]) + (
                f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            )
            ctx.note(f"skipped {len(skipped)} domains BuiltWith could not look up: {shown}")


def errors_of(body: Any) -> list[Any]:
    """The top-level ``Errors`` list of a decoded body (empty when absent or malformed)."""
    if isinstance(body, dict) and isinstance(body.get("Errors"), list):
        return body["Errors"]
    return []
