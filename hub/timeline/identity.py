"""Identity resolution: which account every source record belongs to.

One account per customer company, keyed by the HubSpot company id. Mappings write
*entities* (a HubSpot company, a Stripe customer, a Zendesk organization, a BuiltWith
domain); ``resolve()`` links each to an account, in this order:

1. ``root``        a live HubSpot company is its own account;
   ``merged``      a merged-away HubSpot company links to the survivor;
2. ``override``    an ``[identity.overrides]`` entry for the entity key, or a link made on
                   the web app's identity page (table ``identity_overrides``, where a NULL
                   account is an unlink: the record stays unmatched);
3. ``explicit_id`` the source names the company (Stripe ``metadata.hubspot_company_id``,
                   Zendesk organization ``external_id``), remapped through merges;
4. ``domain``      exactly one account has the entity's normalised domain (free-mail
                   domains never match; two accounts on one domain is a reported conflict);
5. ``override``    an ``[identity.overrides]`` entry for one of the entity's domains;
6. ``member_domain`` an entity with neither an explicit id nor a domain of its own (a
                   support organization) whose people's e-mail domains name exactly one
                   account (several accounts: a reported conflict).

Whatever is left is *unmatched*: kept, reported by ``hub accounts --unmatched``, never dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hub import clock
from hub.store import Store

FREEMAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "ymail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "web.de",
        "mail.com",
        "yandex.com",
        "yandex.ru",
        "zoho.com",
        "qq.com",
        "163.com",
        "fastmail.com",
        "hey.com",
    }
)
# Second-level suffixes under which the registrable domain has three labels. A full public
# suffix list is not worth a dependency here: these cover the customers we see.
_TWO_LEVEL = frozenset(
    {
        "co.uk",
        "org.uk",
        "ac.uk",
        "gov.uk",
        "com.au",
        "net.au",
        "org.au",
        "co.nz",
        "co.jp",
        "ne.jp",
        "com.br",
        "com.mx",
        "co.in",
        "co.za",
        "com.sg",
        "com.cn",
        "com.tr",
        "co.kr",
        "com.ar",
        "com.hk",
        "co.il",
        "com.tw",
    }
)
_STRIP = re.compile(r"^[a-z][a-z0-9+.-]*://")


def normalize_domain(value: str | None) -> str | None:
    """``https://www.Acme.co.uk/x`` → ``acme.co.uk``; e-mail addresses give their domain.

    Returns None for empty or clearly invalid input.
    """
    if not value:
        return None
    text = str(value).strip().lower()
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    text = _STRIP.sub("", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    if text.startswith("www."):
        text = text[4:]
    labels = [label for label in text.split(".") if label]
    if len(labels) < 2 or not all(
        re.fullmatch(r"[a-z0-9-]+|xn--[a-z0-9-]+", label) for label in labels
    ):
        return None
    keep = 3 if ".".join(labels[-2:]) in _TWO_LEVEL and len(labels) >= 3 else 2
    return ".".join(labels[-keep:])


def is_freemail(domain: str | None, extra: frozenset[str] | set[str] = frozenset()) -> bool:
    return domain is not None and (domain in FREEMAIL or domain in extra)


@dataclass
class Resolution:
    """What ``resolve()`` did: counts per method, conflicts, unmatched entities."""

    links: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unmatched: int = 0
    conflicts: int = 0
    changed_entities: set[str] = field(default_factory=set)
    relinked_events: int = 0


def resolve(
    store: Store,
    *,
    overrides: dict[str, str] | None = None,
    freemail: set[str] | None = None,
    only_changed: bool = False,
) -> Resolution:
    """Recompute every entity's account link; rewrite only links that changed, and point the
    events of entities whose account changed at their new account in the same transaction
    (so a run killed after the links moved cannot leave events on the old account).

    With ``only_changed`` (what ``hub map`` does) nothing is recomputed when no entity's
    identity inputs changed (``_hub_identity_dirty``, kept by triggers) and the overrides are
    the ones of the last resolution: the result then reports the links as they stand.
    """
    db = store.db
    overrides = {
        k.strip().lower() if "." in k and ":" not in k else k.strip(): str(v)
        for k, v in (overrides or {}).items()
    }
    extra_freemail = frozenset(d.lower() for d in (freemail or ()))
    # Links (account id) and unlinks (NULL) made on the web app's identity page; hub.toml's
    # overrides win over them for the same key.
    manual: dict[str, str | None] = {}
    if db["identity_overrides"].exists():
        manual = {
            k: v
            for k, v in db.execute("SELECT key, account_id FROM identity_overrides")
            if k not in overrides
        }
    fingerprint = hashlib.sha256(
        json.dumps(
            [sorted(overrides.items()), sorted(extra_freemail), sorted(manual.items(), key=str)]
        ).encode()
    ).hexdigest()
    if only_changed and _unchanged(store, fingerprint):
        return _standing(store)
    # Tuples, not dicts: every entity is held at once (half a million at 100k companies).
    entities = [
        _Entity(*row) for row in db.execute(f"SELECT {', '.join(_Entity._fields)} FROM entities")
    ]
    roots = {e.source_id: e for e in entities if e.is_root and not e.deleted and not e.merged_into}
    root_noun = next((_noun(e) for e in roots.values()), "root record")
    merged = {e.source_id: e.merged_into for e in entities if e.is_root and e.merged_into}

    def survivor(company_id: str | None) -> str | None:
        seen = set()
        while company_id in merged and company_id not in seen:
            seen.add(company_id)
            company_id = merged[company_id]
        return company_id if company_id in roots else None

    by_domain: dict[str, set[str]] = defaultdict(set)
    for company_id, e in roots.items():
        for domain in json.loads(e.domains or "[]"):
            if not is_freemail(domain, extra_freemail):
                by_domain[domain].add(company_id)
    # A merged-away company's domain belongs to the survivor (HubSpot keeps it as an
    # additional domain), unless a live company already claims it.
    for e in entities:
        if e.is_root and e.merged_into:
            target = survivor(e.source_id)
            for domain in json.loads(e.domains or "[]"):
                if target and domain not in by_domain and not is_freemail(domain, extra_freemail):
                    by_domain[domain].add(target)

    result = Resolution()
    new_links: dict[str, tuple[str, str, str]] = {}  # entity -> (account, method, detail)
    issues: list[tuple[str, str, str]] = []
    for e in entities:
        key = e.key
        domains = json.loads(e.domains or "[]")
        link: tuple[str, str, str] | None = None
        if e.is_root:
            if e.deleted:
                issues.append((key, "archived", f"the {_noun(e)} is archived"))
            elif e.merged_into:
                target = survivor(e.source_id)
                if target:
                    link = (target, "merged", f"merged into {target}")
            else:
                link = (e.source_id, "root", _noun(e))
        elif key in manual and manual[key] is None:
            issues.append((key, "unlinked", "unlinked by hand on the identity page"))
        elif key in manual and manual[key] in roots:
            link = (str(manual[key]), "override", "linked by hand on the identity page")
        elif key in overrides and overrides[key] in roots:
            link = (overrides[key], "override", f"[identity.overrides] {key}")
        else:
            explicit = e.explicit_account
            if explicit:
                target = survivor(str(explicit))
                if target:
                    link = (
                        target,
                        "explicit_id",
                        f"names company {explicit}"
                        + (f" (merged into {target})" if target != str(explicit) else ""),
                    )
                else:
                    issues.append(
                        (
                            key,
                            "unknown_explicit_id",
                            f"names company {explicit}, which is not a live {root_noun}",
                        )
                    )
            if link is None:
                candidates: set[str] = set()
                matched_domain = None
                for domain in domains:
                    if is_freemail(domain, extra_freemail):
                        continue
                    found = by_domain.get(domain, set())
                    if found:
                        candidates |= found
                        matched_domain = domain
                if len(candidates) == 1:
                    link = (next(iter(candidates)), "domain", f"domain {matched_domain}")
                elif len(candidates) > 1:
                    result.conflicts += 1
                    issues.append(
                        (
                            key,
                            "domain_conflict",
                            f"domain {matched_domain} belongs to companies {', '.join(sorted(candidates))}",
                        )
                    )
            if link is None:
                for domain in domains:
                    if domain in overrides and overrides[domain] in roots:
                        link = (overrides[domain], "override", f"[identity.overrides] {domain}")
                        break
            if link is None and not domains and not e.explicit_account:
                link = _by_members(e, by_domain, extra_freemail, issues, result)
        if link is None:
            if not e.is_root:
                result.unmatched += 1
                # Issues of this entity were appended in this iteration: the last one tells.
                if not issues or issues[-1][0] != key:
                    reason = (
                        "only free-mail domains"
                        if domains and all(is_freemail(d, extra_freemail) for d in domains)
                        else "no id, domain or override matches an account"
                    )
                    issues.append((key, "unmatched", reason))
            continue
        result.links[link[1]] += 1
        new_links[key] = link

    old = {
        r["entity"]: (r["account_id"], r["method"], r["detail"])
        for r in db.query("SELECT entity, account_id, method, detail FROM account_links")
    }
    by_key = {e.key: e for e in entities}
    now = clock.iso()
    dirty: set[str] = set()  # accounts an entity joined or left: their rows are rebuilt
    with db.atomic():
        gone = [k for k in old if k not in new_links]
        for k in gone:
            db.execute("DELETE FROM account_links WHERE entity = ?", [k])
            result.changed_entities.add(k)
            dirty.add(old[k][0])
        rows = []
        for k, (account, method, detail) in new_links.items():
            if old.get(k) != (account, method, detail):
                e = by_key[k]
                rows.append((k, account, e.source, e.kind, e.source_id, method, detail, now))
                dirty.add(account)
                if k in old:
                    dirty.add(old[k][0])
                if old.get(k, (None,))[0] != account:
                    result.changed_entities.add(k)
        db.conn.executemany(
            "INSERT OR IGNORE INTO _hub_dirty_accounts (account_id) VALUES (?)",
            [(a,) for a in sorted(dirty) if a],
        )
        db.conn.executemany(
            "INSERT INTO account_links (entity, account_id, source, kind, source_id, method, detail, linked_at) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(entity) DO UPDATE SET account_id=excluded.account_id, "
            "method=excluded.method, detail=excluded.detail, linked_at=excluded.linked_at",
            rows,
        )
        db.execute("DELETE FROM identity_issues")
        db.conn.executemany(
            "INSERT OR REPLACE INTO identity_issues (entity, issue, detail, seen_at) VALUES (?,?,?,?)",
            [(k, issue, detail, now) for k, issue, detail in issues],
        )
        result.relinked_events = _relink_events(
            store, {k: old.get(k, (None,))[0] for k in result.changed_entities}, now
        )
        db.execute("DELETE FROM _hub_identity_dirty")
        db.execute(
            "INSERT OR REPLACE INTO _hub_identity_meta (key, value) VALUES ('fingerprint', ?)",
            [fingerprint],
        )
    return result


def _noun(e: _Entity) -> str:
    """What people call an entity in identity's words: its source's label and its kind
    ("HubSpot company" for the CRM's roots), so core names no vendor itself."""
    from hub.vocabulary import vocabulary

    return f"{vocabulary().source(e.source).label or e.source} {e.kind}"


class _Entity(NamedTuple):
    """What identity reads of one entity."""

    key: str
    source: str
    kind: str
    source_id: str
    domains: str | None
    explicit_account: str | None
    is_root: int
    merged_into: str | None
    deleted: int
    member_domains: str | None


def _unchanged(store: Store, fingerprint: str) -> bool:
    db = store.db
    if db.execute("SELECT 1 FROM _hub_identity_dirty LIMIT 1").fetchone():
        return False
    row = db.execute("SELECT value FROM _hub_identity_meta WHERE key = 'fingerprint'").fetchone()
    return row is not None and row[0] == fingerprint


def _standing(store: Store) -> Resolution:
    """What the last resolution found, read back: links per method, unmatched, conflicts."""
    db = store.db
    result = Resolution()
    for method, count in db.execute("SELECT method, count(*) FROM account_links GROUP BY method"):
        result.links[method] = count
    result.unmatched = db.execute(
        "SELECT count(*) FROM entities e WHERE is_root = 0 "
        "AND NOT EXISTS (SELECT 1 FROM account_links l WHERE l.entity = e.key)"
    ).fetchone()[0]
    result.conflicts = db.execute(
        "SELECT count(*) FROM identity_issues WHERE issue IN "
        "('domain_conflict', 'member_domain_conflict')"
    ).fetchone()[0]
    return result


def _by_members(
    e: _Entity,
    by_domain: dict[str, set[str]],
    freemail: frozenset[str],
    issues: list[tuple[str, str, str]],
    result: Resolution,
) -> tuple[str, str, str] | None:
    """Link through the entity's people's e-mail domains when they name exactly one account."""
    members = [d for d in json.loads(e.member_domains or "[]") if not is_freemail(d, freemail)]
    found = {d: by_domain[d] for d in members if by_domain.get(d)}
    accounts = set().union(*found.values()) if found else set()
    if len(accounts) == 1:
        account = next(iter(accounts))
        return account, "member_domain", f"its people's e-mail domain {', '.join(sorted(found))}"
    if len(accounts) > 1:
        result.conflicts += 1
        issues.append(
            (
                e.key,
                "member_domain_conflict",
                f"its people's e-mail domains {', '.join(sorted(found))} belong to companies "
                + ", ".join(sorted(accounts)),
            )
        )
    return None


def _relink_events(store: Store, entities: dict[str, str | None], now: str) -> int:
    """Point events of entities whose account changed (and unlinked events) at their account.

    ``entities`` maps each entity to the account it was linked to before (None: none): its
    events carry that account, so they are found through the ``(account_id, ts)`` index."""
    db = store.db
    relink = (
        "UPDATE events SET account_id = (SELECT account_id FROM account_links l "
        "WHERE l.entity = events.entity), mapped_at = ? WHERE "
    )
    total = 0
    for entity, before in sorted(entities.items()):
        # Unlinked events (``before`` None) are relinked by the one statement below: per
        # entity they would be found only by scanning every unlinked event (there is no index
        # on ``entity``), which on a first map is most of the table for each entity.
        if before is not None:
            cursor = db.execute(relink + "account_id = ? AND entity = ?", [now, before, entity])
            total += cursor.rowcount
    cursor = db.execute(
        relink + "account_id IS NULL AND entity IN (SELECT entity FROM account_links)", [now]
    )
    return total + cursor.rowcount


def account_for(store: Store, text: str) -> dict[str, Any] | None:
    """Find an account by id, domain or (unique, case-insensitive) name; the lookup itself
    is the read model ``hub.store.queries.find_account`` (names matched literally)."""
    from hub.store.queries import find_account

    return find_account(store, text, domain=normalize_domain(text))
