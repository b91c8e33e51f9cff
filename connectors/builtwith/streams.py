"""The BuiltWith ``domains`` stream: one raw row per looked-up domain.

BuiltWith has no list endpoint; the hub decides what to look up. The domain list comes from
the hub's own database (``known_domains``): the domains of known accounts plus
``settings.domains``, without free-mail providers. Domains are looked up 16 per request
(the multi-lookup maximum), never-seen domains first, then the stalest. A domain looked up
within ``freshness_days`` is skipped, which is what keeps credits from being spent twice: the
raw row's ``looked_up_at`` (also its ``updated_at`` column) is the per-domain bookmark, and it
commits with the page, so a killed run resumes with the domains it had not reached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from hub import clock
from hub.connector import Page, Stream, SyncContext
from hub.errors import FatalAPIError
from hub.store import RawRecord, Store, raw_table_name
from hub.timeline.identity import FREEMAIL, normalize_domain

_OUT_OF_CREDITS = -3


def _column(store: Store, sql: str) -> list[Any]:
    try:
        return [row[0] for row in store.db.execute(sql)]
    except Exception:  # noqa: BLE001 - a table of an unexpected shape contributes nothing
        return []


def known_domains(store: Store, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Domains to look up: accounts, HubSpot companies in raw tables, and ``extra``.

    Tolerates any of the sources being absent or empty (a first run has no accounts yet; a
    hub may not sync HubSpot at all). Free-mail domains and non-domains are dropped; the
    result is sorted and unique.
    """
    values: list[Any] = list(extra)
    tables = set(store.db.table_names())
    if "accounts" in tables:
        values += _column(
            store, "SELECT domain FROM accounts WHERE domain IS NOT NULL AND domain != ''"
        )
    for table in sorted(tables):
        # HubSpot companies, whatever the connection is called: raw_<connection>_companies
        # rows in the SimplePublicObject shape. Archived companies are tombstones: skipped.
        if table.startswith("raw_") and table.endswith("_companies"):
            values += _column(
                store,
                f"SELECT json_extract(data, '$.properties.domain') FROM [{table}] WHERE deleted = 0",
            )
    out = {d for d in (normalize_domain(v) for v in values) if d and d not in FREEMAIL}
    return sorted(out)


def matches(tech: dict[str, Any], names: set[str]) -> bool:
    """A technology matches a configured name by its own name or its parent's (any case)."""
    for key in ("Name", "Parent"):
        value = tech.get(key)
        if isinstance(value, str) and value.strip().casefold() in names:
            return True
    return False


class DomainsStream(Stream):
    """Technology profile of each known domain (``GET /v{N}/api.json?LOOKUP=a,b,…``)."""

    name = "domains"
    primary_key = "domain"
    cursor_field = "looked_up_at"
    records_path = "Results"
    incremental = "custom"

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/{self.settings.api_version}/api.json"

    # -- plan -----------------------------------------------------------------------------

    def _looked_up(self, ctx: SyncContext) -> dict[str, str]:
        """domain → looked_up_at of every row already stored."""
        table = raw_table_name(ctx.connection, self.name)
        if not ctx.store.db[table].exists():
            return {}
        return {
            rid: at
            for rid, at in ctx.store.db.execute(f"SELECT id, updated_at FROM [{table}]")
            if at
        }

    def plan(self, ctx: SyncContext, state: dict[str, Any], domains: list[str]) -> list[str]:
        """Domains due for a lookup: never seen first, then oldest, skipping fresh ones."""
        if ctx.full_refresh:
            return domains
        cutoff = clock.iso(clock.now() - dt.timedelta(days=self.settings.freshness_days))
        seen = self._looked_up(ctx)
        failed = state.get("failed") or {}
        due = [d for d in domains if max(seen.get(d, ""), failed.get(d, {}).get("at", "")) < cutoff]
        skipped = len(domains) - len(due)
        if skipped:
            ctx.note(
                f"{skipped} domains looked up within {self.settings.freshness_days} days: no credits spent on them"
            )
        return sorted(due, key=lambda d: (seen.get(d, ""), d))

    # -- rows -----------------------------------------------------------------------------

    def to_row(self, item: dict[str, Any], looked_up_at: str) -> RawRecord:
        ours = {n.casefold() for n in self.settings.our_technologies}
        rivals = {n.casefold() for n in self.settings.competitors}
        result = item.get("Result") or {}
        technologies = []
        for path in result.get("Paths") or []:
            for tech in path.get("Technologies") or []:
                first, last = tech.get("FirstDetected"), tech.get("LastDetected")
                technologies.append(
                    {
                        "name": tech.get("Name"),
                        "parent": tech.get("Parent"),
                        "subdomain": path.get("SubDomain") or "",
                        "url": path.get("Url") or "",
                        "tag": tech.get("Tag"),
                        "categories": tech.get("Categories") or [],
                        "first_detected": first,
                        "last_detected": last,
                        "first_detected_at": clock.iso(clock.parse(first)) if first else None,
                        "last_detected_at": clock.iso(clock.parse(last)) if last else None,
                        # "yes"/"no" strings in JSON; accept a boolean too.
                        "premium": str(tech.get("IsPremium")).lower() in ("yes", "true"),
                        "ours": matches(tech, ours),
                        "competitor": matches(tech, rivals),
                    }
                )
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

    # -- the loop -------------------------------------------------------------------------

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        state = dict(state or {})
        domains = known_domains(ctx.store, self.settings.domains)
        due = self.plan(ctx, state, domains)
        # Forget failures of domains no longer known, so the state stays small.
        known = set(domains)
        failed = {d: v for d, v in (state.get("failed") or {}).items() if d in known}
        batch = self.settings.batch_size
        looked_up = 0
        skipped: list[str] = []
        for start in range(0, len(due), batch):
            chunk = due[start : start + batch]
            response = ctx.client.get(self.path, params=self.connector.lookup_params(chunk))
            body = response.json()
            now = clock.iso()
            records = [
                self.to_row(item, now)
                for item in body.get("Results") or []
                if isinstance(item, dict)
            ]
            answered = {r.id for r in records}
            out_of_credits = False
            reported: set[str] = set()
            for item in body.get("Errors") or []:
                lookup = normalize_domain(item.get("Lookup")) if isinstance(item, dict) else None
                if lookup:
                    reported.add(lookup)
                message = (
                    item.get("Message") if isinstance(item, dict) else str(item)
                ) or "unknown error"
                code = item.get("Code") if isinstance(item, dict) else None
                if code == _OUT_OF_CREDITS:
                    out_of_credits = True
                    continue
                if lookup:
                    failed[lookup] = {"at": now, "message": str(message)[:200], "code": code}
                    skipped.append(f"{lookup} ({message})")
                    ctx.log.info(
                        "%s: BuiltWith could not look up %s: %s", ctx.connection, lookup, message
                    )
            for domain in answered:
                failed.pop(domain, None)
            for domain in chunk:
                if domain not in answered and domain not in reported:
                    # Neither a result nor an error: wait for the window like a failure.
                    failed[domain] = {"at": now, "message": "no result returned", "code": None}
                    skipped.append(f"{domain} (no result returned)")
            looked_up += len(records)
            last = start + batch >= len(due)
            page_state = {"failed": failed}
            yield Page(records, page_state, done=last and not out_of_credits)
            if out_of_credits:
                self._report(ctx, looked_up, skipped)
                raise FatalAPIError(
                    f"BuiltWith account is out of API credits after {looked_up} lookups in this run (code -3)",
                    code="-3",
                    hint="buy credits or wait for the plan to renew; domains already looked up are kept",
                )
            if ctx.stop.is_set() and not last:
                self._report(ctx, looked_up, skipped)
                return
        if not due:
            yield Page([], {"failed": failed}, done=True)
        self._report(ctx, looked_up, skipped)

    def _report(self, ctx: SyncContext, looked_up: int, skipped: list[str]) -> None:
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
