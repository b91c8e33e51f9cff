"""BuiltWith fake: word lists, the ``Tech`` and ``Profile`` records and generation helpers."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.sandbox.base import (
    Company,
)
from hub.sandbox.builtwith.catalogue import _FLAG_OFF, DAY_MS

_COMMON = [
    "jQuery",
    "jQuery 3.6.0",
    "Google Analytics",
    "Google Tag Manager",
    "Cloudflare",
    "Stripe",
    "HubSpot",
    "Zendesk",
    "Facebook Pixel",
    "Let's Encrypt",
    "Nginx",
    "WordPress",
    "React",
    "Font Awesome",
    "reCAPTCHA",
    "Hotjar",
    "Amazon S3",
    "Google Fonts",
    "SPF",
    "DMARC",
]
_FREEMAIL_TECH = [
    "Google Analytics",
    "Google Tag Manager",
    "Akamai",
    "Optimizely",
    "HSTS",
    "SPF",
    "DMARC",
    "Angular",
    "React",
    "Google Fonts",
    "reCAPTCHA",
    "Let's Encrypt",
    "Nginx",
    "Amazon S3",
    "Facebook Pixel",
    "Font Awesome",
    "Google Workspace",
    "Hotjar",
]
_VERTICALS = [
    "Business And Industrial",
    "Technology And Computing",
    "Shopping",
    "Health",
    "Food And Drink",
    "Travel",
    "Finance",
]
_CITIES = [
    ("San Francisco", "CA", "94105", "US"),
    ("Austin", "TX", "73301", "US"),
    ("London", None, "EC1A 1BB", "GB"),
    ("Berlin", None, "10115", "DE"),
    ("Lisbon", None, "1100-148", "PT"),
    ("Toronto", "ON", "M5H 2N2", "CA"),
]
_EXPANSION_SUBDOMAINS = ["app", "help", "shop", "docs"]


@dataclass(slots=True)
class Tech:
    """One technology on one path of a domain; days are days since the Unix epoch."""

    name: str
    subdomain: str
    first: int  # first day detected
    gone: int | None = None  # first day it was no longer detected; None = still there

    def current(self, today: int) -> bool:
        return self.gone is None or self.gone > today


@dataclass(slots=True)
class Profile:
    """What BuiltWith knows about one domain: technologies plus indexing rhythm and meta."""

    domain: str
    company: Company | None
    period: int  # re-indexed every ``period`` days …
    phase: int  # … on days where (day + phase) % period == 0
    techs: list[Tech] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    spend_history: list[dict[str, int]] = field(default_factory=list)
    sales_revenue: int = 0

    def last_index(self, day: int) -> int:
        """The latest indexing day on or before ``day``."""
        return day - ((day + self.phase) % self.period)


def _day(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // 86400


def _flag(params: httpx.QueryParams, name: str) -> bool:
    """A flag is on when present, even empty (``NOPII=``), unless it says no."""
    if name not in params:
        return False
    return params[name].strip().lower() not in _FLAG_OFF


_NOT_BARE = re.compile(r"[/:?#]")


def normalise_domain(value: str) -> str:
    """Lower-case a LOOKUP item and strip scheme, path, port and a leading ``www.``."""
    text = value.strip().lower()
    if not _NOT_BARE.search(text) and not text.startswith("www."):
        return text.rstrip(".")  # already a bare domain (the usual case)
    if "://" in text:
        text = text.split("://", 1)[1]
    text = re.split(r"[/?#]", text, maxsplit=1)[0].split(":", 1)[0].rstrip(".")
    if text.startswith("www."):
        text = text[4:]
    return text


def _pick(rng: Any, keys: list[int], rate: float) -> list[int]:
    """About ``rate * len(keys)`` keys, chosen without replacement (O(picked), not O(N))."""
    expected = len(keys) * rate
    count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
    return rng.sample(keys, min(count, len(keys))) if count else []


def _parse_range(value: str | None) -> tuple[int, int] | None:
    """``YYYYMMDD-YYYYMMDD`` (as the official CLI sends FDRANGE/LDRANGE) → epoch-ms bounds."""
    if not value or "-" not in value:
        return None
    try:
        low, high = (
            dt.datetime.strptime(part.strip(), "%Y%m%d").replace(tzinfo=dt.timezone.utc)
            for part in value.split("-", 1)
        )
    except ValueError:
        return None
    return int(low.timestamp()) * 1000, (int(high.timestamp()) + 86399) * 1000 + 999


def _meta(rng: Any, domain: str, company: Company | None) -> dict[str, Any]:
    city, state, postcode, country = rng.choice(_CITIES)
    return {
        "Majestic": rng.randint(1000, 900_000),
        "Umbrella": 0,
        "Vertical": rng.choice(_VERTICALS),
        "Social": [f"https://twitter.com/{domain.split('.')[0]}"],
        "CompanyName": company.name if company else None,
        "Telephones": [f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"],
        "Emails": [f"info@{domain}"],
        "City": city,
        "State": state,
        "Postcode": postcode,
        "Country": country,
        "Names": None,
        "ARank": rng.randint(1000, 2_000_000),
        "QRank": -1,
    }


def _attributes(rng: Any, employees: int) -> dict[str, Any]:
    attributes = dict.fromkeys(
        [
            "MJRank",
            "MJTLDRank",
            "RefSN",
            "RefIP",
            "Followers",
            "Sitemap",
            "GTMTags",
            "QubitTags",
            "TealiumTags",
            "AdobeTags",
            "CDimensions",
            "CGoals",
            "CMetrics",
            "ProductCount",
        ],
        0,
    )
    attributes["Employees"] = employees
    attributes["Sitemap"] = rng.randint(0, 400)
    attributes["GTMTags"] = rng.randint(0, 3)
    return attributes


def _spend_history(rng: Any, start_day: int, scale: int) -> list[dict[str, int]]:
    return [
        {"D": (start_day - months * 30) * DAY_MS, "S": rng.randint(0, scale)}
        for months in (24, 12, 1)
    ]
