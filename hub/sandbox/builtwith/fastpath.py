"""BuiltWith fake: the cheap way to a domain's answer on its first lookup.

A paging client asks for each domain once, so a cache of rendered answers does not help a
first pass: what costs is generating the profile and encoding it. Two pieces keep both small:

- ``hub.sandbox.draws.Draws``: the standard library's draws, value for value, without its
  layers of Python calls, so a profile is the one the generator always made for its seed;
- ``render_json``: the JSON text of a profile's result written from pre-encoded pieces (each
  technology's constant part is encoded once per process), byte for byte what
  ``json.dumps(_render(...), separators=(",", ":"))`` gives (a test holds the two together).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from hub.sandbox.builtwith.catalogue import _CATALOGUE, DAY_MS
from hub.sandbox.builtwith.records import Profile
from hub.sandbox.draws import Draws

__all__ = ["Draws", "render_json"]


@lru_cache(maxsize=4096)
def _tech_head(name: str, hide_text: bool, hide_dl: bool) -> str:
    """A technology item up to (not including) ``"FirstDetected"``, as ``json.dumps`` writes it."""
    description, link, tag, categories, _premium, _cost, parent = _CATALOGUE[name]
    item: dict[str, Any] = {}
    if parent:
        item["Parent"] = parent
    item.update(
        {
            "Name": name,
            "Description": None if hide_dl else description,
            "Link": None if hide_dl else link,
            "Tag": None if hide_text else tag,
            "Categories": None if hide_text else (list(categories) if categories else None),
        }
    )
    return json.dumps(item, separators=(",", ":"))[:-1] + ","


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


@lru_cache(maxsize=1024)
def _key(text: str) -> str:
    return _string(text)


def _string(text: str) -> str:
    """A JSON string; plain ASCII (domains, subdomains) needs no escaping."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def _int_object(values: dict[str, Any]) -> str:
    """A JSON object of integers (a profile's attributes), as ``json.dumps`` writes it."""
    parts = []
    for k, v in values.items():
        if type(v) is not int:
            return _dumps(values)
        parts.append(f"{_key(k)}:{v}")
    return "{" + ",".join(parts) + "}"


def render_json(
    profile: Profile,
    today: int,
    options: dict[str, bool],
    fd_range: tuple[int, int] | None,
    ld_range: tuple[int, int] | None,
) -> str:
    """The JSON text of ``_Profiles._render(profile, ...)`` (``LastDetected`` by the rule of
    ``_Profiles._last_detected``, inlined: the latest indexing day the technology was seen)."""
    phase, period = profile.phase, profile.period
    last_indexed = profile.last_index(today) * DAY_MS
    paths: dict[str, list[str]] = {}
    firsts: dict[str, int] = {}
    spend = 0
    hide_text = options["HIDETEXT"]
    hide_dl = hide_text or options["HIDEDL"]
    live_only = options["LIVEONLY"]
    for tech in profile.techs:
        if tech.first > today:
            continue
        live = tech.gone is None or tech.gone > today
        if live_only and not live:
            continue
        first = tech.first
        first_ms = first * DAY_MS
        seen_until = today if live else tech.gone - 1  # type: ignore[operator]
        last = seen_until - ((seen_until + phase) % period)
        last_ms = (last if last > first else first) * DAY_MS
        if fd_range and not fd_range[0] <= first_ms <= fd_range[1]:
            continue
        if ld_range and not ld_range[0] <= last_ms <= ld_range[1]:
            continue
        premium = _CATALOGUE[tech.name][4]
        if live and premium:
            spend += _CATALOGUE[tech.name][5]
        text = (
            f'{_tech_head(tech.name, hide_text, hide_dl)}"FirstDetected":{first_ms},'
            f'"LastDetected":{last_ms},"IsPremium":"{"yes" if premium else "no"}"}}'
        )
        sub = tech.subdomain
        found = paths.get(sub)
        if found is None:
            paths[sub] = [text]
            firsts[sub] = first_ms
        else:
            found.append(text)
            if first_ms < firsts[sub]:
                firsts[sub] = first_ms
    domain = _string(profile.domain)
    rendered_paths = ",".join(
        f'{{"Technologies":[{",".join(items)}],"FirstIndexed":{firsts[sub]},'
        f'"LastIndexed":{last_indexed},"Domain":{domain},"Url":"","SubDomain":{_string(sub)}}}'
        for sub, items in sorted(paths.items())
    )
    first_indexed = min(firsts.values(), default=last_indexed)
    if options["NOMETA"]:
        meta = "null"
    elif options["NOPII"]:
        meta = _dumps({**profile.meta, "Telephones": None, "Emails": None, "Names": None})
    else:
        meta = _dumps(profile.meta)
    spend_history = ",".join(f'{{"D":{p["D"]},"S":{p["S"]}}}' for p in profile.spend_history)
    attributes = "null" if options["NOATTR"] else _int_object(profile.attributes)
    return (
        f'{{"Result":{{"SpendHistory":[{spend_history}],"IsDB":"True","Spend":{spend},'
        f'"Paths":[{rendered_paths}]}},"Meta":{meta},"Attributes":{attributes},'
        f'"FirstIndexed":{first_indexed},"LastIndexed":{last_indexed},"Lookup":{domain},'
        f'"SalesRevenue":{profile.sales_revenue}}}'
    )
