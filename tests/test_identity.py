"""Identity resolution on hand-made entities: trust order, free-mail, conflicts, merges."""

from __future__ import annotations

import json

from hub.timeline import build_accounts
from hub.timeline.identity import normalize_domain, resolve


def test_normalize_domain():
    assert normalize_domain("https://www.Acme.co.uk/pricing?x=1") == "acme.co.uk"
    assert normalize_domain("Billing@Sub.Example.com") == "example.com"
    assert normalize_domain("http://a.b.example.com:8080/") == "example.com"
    assert normalize_domain("localhost") is None
    assert normalize_domain("") is None and normalize_domain(None) is None


def add(
    store,
    key,
    *,
    name=None,
    domains=(),
    explicit=None,
    root=False,
    merged=None,
    deleted=False,
    facts=None,
    members=(),
):
    source, kind, sid = key.split(":", 2)
    store.db["entities"].insert(
        {
            "key": key,
            "source": source,
            "kind": kind,
            "source_id": sid,
            "name": name,
            "domains": json.dumps(list(domains)),
            "explicit_account": explicit,
            "is_root": 1 if root else 0,
            "merged_into": merged,
            "deleted": 1 if deleted else 0,
            "facts": json.dumps(facts or {}),
            "member_domains": json.dumps(list(members)),
            "updated_at": "x",
        }
    )


def links(store):
    return {
        r["entity"]: (r["account_id"], r["method"])
        for r in store.db.query("SELECT * FROM account_links")
    }


def issues(store):
    return {r["entity"]: r["issue"] for r in store.db.query("SELECT * FROM identity_issues")}


def test_trust_order_and_traps(store):
    add(
        store,
        "hubspot:company:1",
        name="Acme",
        domains=["acme.com"],
        root=True,
        facts={"owner_name": "Ana"},
    )
    add(store, "hubspot:company:2", name="Beta", domains=["beta.com"], root=True)
    add(store, "hubspot:company:3", name="Beta Dup", domains=["beta.com"], root=True)
    add(store, "hubspot:company:4", name="Gone", domains=["gone.com"], root=True, deleted=True)
    add(store, "hubspot:company:5", name="Merged away", domains=["old.com"], root=True, merged="1")
    # Explicit id wins over a domain that points elsewhere.
    add(store, "stripe:customer:c1", domains=["beta.com"], explicit="1", facts={"mrr": 100.0})
    add(store, "stripe:customer:c2", domains=["acme.com"], facts={"mrr": 50.0})  # domain
    add(store, "stripe:customer:c3", domains=["gmail.com"])  # free-mail never matches
    add(store, "zendesk:organization:o1", domains=["beta.com"])  # conflict: two companies
    add(store, "zendesk:organization:o2", explicit="5")  # explicit id of a merged company
    add(store, "zendesk:organization:o3", explicit="4")  # explicit id of an archived company
    add(store, "stripe:customer:c4", domains=["nothing.example"])
    add(store, "stripe:customer:c5", domains=["elsewhere.example"])

    res = resolve(store, overrides={"stripe:customer:c4": "2", "elsewhere.example": "2"})
    got = links(store)
    assert got["hubspot:company:1"] == ("1", "root")
    assert got["hubspot:company:5"] == ("1", "merged")
    assert got["stripe:customer:c1"] == ("1", "explicit_id")
    assert got["stripe:customer:c2"] == ("1", "domain")
    assert got["zendesk:organization:o2"] == ("1", "explicit_id")
    assert got["stripe:customer:c4"] == ("2", "override")
    assert got["stripe:customer:c5"] == ("2", "override")
    for missing in (
        "stripe:customer:c3",
        "zendesk:organization:o1",
        "zendesk:organization:o3",
        "hubspot:company:4",
    ):
        assert missing not in got
    found = issues(store)
    assert found["zendesk:organization:o1"] == "domain_conflict"
    assert found["stripe:customer:c3"] == "unmatched"
    assert found["zendesk:organization:o3"] == "unknown_explicit_id"
    assert found["hubspot:company:4"] == "archived"
    # The words name the root's source by its label (the vocabulary's), not a vendor in core.
    details = dict(store.db.execute("SELECT entity, detail FROM identity_issues"))
    assert details["hubspot:company:4"] == "the HubSpot company is archived"
    assert (
        details["zendesk:organization:o3"] == "names company 4, which is not a live HubSpot company"
    )
    assert res.conflicts == 1

    assert build_accounts(store) == 3
    acme = next(store.db.query("SELECT * FROM accounts WHERE id = '1'"))
    assert acme["name"] == "Acme" and acme["domain"] == "acme.com" and acme["mrr"] == 150.0
    assert acme["owner_name"] == "Ana"
    assert json.loads(acme["facts"])["sources"] == {"hubspot": 2, "stripe": 2, "zendesk": 1}


def test_resolve_reports_only_changed_links(store):
    add(store, "hubspot:company:1", domains=["acme.com"], root=True)
    add(store, "stripe:customer:c1", domains=["acme.com"])
    first = resolve(store)
    assert first.changed_entities == {"hubspot:company:1", "stripe:customer:c1"}
    assert resolve(store).changed_entities == set()
    store.db.execute("UPDATE entities SET explicit_account = '9' WHERE key = 'stripe:customer:c1'")
    add(store, "hubspot:company:9", domains=["nine.com"], root=True)
    third = resolve(store)
    assert third.changed_entities == {"hubspot:company:9", "stripe:customer:c1"}
    assert links(store)["stripe:customer:c1"] == ("9", "explicit_id")


def test_an_organization_without_id_or_domain_links_through_its_people(store):
    add(store, "hubspot:company:1", name="Acme", domains=["acme.example"], root=True)
    add(store, "hubspot:company:2", name="Beta", domains=["beta.example"], root=True)
    # Users at acme.example and gmail.com: free-mail never counts, one account is named.
    add(store, "zendesk:organization:10", members=["acme.example", "gmail.com"])
    # Users at both companies: a conflict, reported, not guessed.
    add(store, "zendesk:organization:11", members=["acme.example", "beta.example"])
    # A domain of its own that matches nothing: its people are not asked.
    add(store, "zendesk:organization:12", domains=["other.example"], members=["acme.example"])
    # An explicit id wins over its people.
    add(store, "zendesk:organization:13", explicit="2", members=["acme.example"])
    result = resolve(store)
    got = links(store)
    assert got["zendesk:organization:10"] == ("1", "member_domain")
    assert "zendesk:organization:11" not in got and "zendesk:organization:12" not in got
    assert got["zendesk:organization:13"] == ("2", "explicit_id")
    assert issues(store)["zendesk:organization:11"] == "member_domain_conflict"
    assert result.links["member_domain"] == 1 and result.conflicts == 1
    detail = store.db.execute(
        "SELECT detail FROM account_links WHERE entity = 'zendesk:organization:10'"
    ).fetchone()[0]
    assert detail == "its people's e-mail domain acme.example"
