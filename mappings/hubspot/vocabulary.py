"""What the HubSpot mapping puts on the timeline: its source, event types and account facts.

``hub.vocabulary`` collects these when the mapping registers.
"""

from __future__ import annotations

from hub.vocabulary import EventType, Source

SOURCE = "hubspot"


SOURCE_INFO = Source("hubspot", label="HubSpot", letter="H", fact_rank=0, style="yellow")
EVENT_TYPES = [
    EventType(
        "lifecycle_changed",
        "The company's lifecycle stage changed (attrs: from, to)",
        polarity="neutral",
        noun=("lifecycle change", "lifecycle changes"),
    ),
    EventType(
        "contact_unsubscribed",
        "A contact unsubscribed from marketing email (attrs: contact_id)",
        polarity="negative",
        noun=("contact unsubscribed", "contacts unsubscribed"),
    ),
    EventType(
        "deal_won",
        "A deal was won (attrs: deal_id, amount, dealname)",
        polarity="positive",
        noun=("deal won", "deals won"),
    ),
    EventType(
        "deal_lost",
        "A deal was lost (attrs: deal_id, amount, dealname)",
        polarity="negative",
        noun=("deal lost", "deals lost"),
    ),
    EventType(
        "renewal_due",
        "A renewal is coming up (attrs: deal_id, renewal_date, days_left, amount)",
        polarity="neutral",
        noun=("renewal due", "renewals due"),
    ),
    EventType(
        "owner_changed",
        "The company owner (CSM) changed (attrs: from, to)",
        polarity="neutral",
        noun=("owner change", "owner changes"),
    ),
    EventType(
        "csm_touch",
        "A call, e-mail, meeting or note with the customer logged in the CRM (attrs: type, "
        "direction: outbound|inbound|two_way|internal, two_way, owner, owner_name)",
        polarity="neutral",
        noun=("CSM touch", "CSM touches"),
    ),
    EventType(
        "nps_changed",
        "The NPS/survey property changed (attrs: score, previous)",
        polarity="neutral",
        noun=("NPS change", "NPS changes"),
    ),
]
FACTS = {
    "owner_id": "HubSpot owner id of the company (the CSM)",
    "owner_name": "Owner's name",
    "owner_email": "Owner's e-mail",
    "lifecycle_stage": "HubSpot lifecycle stage",
    "renewal_date": "Next renewal date (ISO date) from the renewal deal or subscription period end",
    "customer_since": "When the customer started (ISO)",
    "nps": "Latest NPS score (0-10) from the configured property",
    "contacts_total": "Contacts associated with the company",
    "contacts_unsubscribed": "Of those, how many opted out of marketing email",
    "last_touch": "Last time the CSM contacted the company (notes_last_contacted)",
}


OVERRIDE_PROPERTIES = {
    "value": "hub_health_override",
    "reason": "hub_health_override_reason",
    "until": "hub_health_override_until",
}
"""The company properties a CSM sets to override the score: value (0–100), reason, until (a
date). The HubSpot pusher creates them; this mapping reads them back."""
