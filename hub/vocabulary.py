"""The timeline's vocabulary: every event type and account fact the built-in mappings emit.

Health measures and playbooks key on these names; a third-party mapping may add its own
types (prefix them with its source) and reuse these where the meaning is the same.
Money is in the account currency's major unit (dollars), times are ISO 8601 UTC.
"""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    # Zendesk
    "ticket_opened": "A support ticket was opened (attrs: ticket_id, priority, subject)",
    "ticket_solved": "A ticket was solved (attrs: ticket_id, priority, resolution_hours)",
    "ticket_reopened": "A solved ticket was reopened (attrs: ticket_id, reopens)",
    "ticket_urgent": "A ticket is urgent or escalated (attrs: ticket_id, priority, escalated)",
    "csat_good": "A customer rated support good (attrs: ticket_id, comment)",
    "csat_bad": "A customer rated support bad (attrs: ticket_id, comment)",
    # Stripe
    "subscription_started": "A subscription started (attrs: subscription_id, plan, mrr, seats)",
    "subscription_upgraded": "Seats or price went up (attrs: mrr_before, mrr_after, seats_before, seats_after)",
    "subscription_downgraded": "Seats or price went down (attrs: mrr_before, mrr_after, seats_before, seats_after)",
    "subscription_cancelled": "A subscription was cancelled (attrs: reason, feedback, comment)",
    "invoice_paid": "An invoice was paid on time (attrs: invoice_id, amount)",
    "invoice_paid_late": "An invoice was paid after its due date (attrs: invoice_id, amount, days_late)",
    "payment_failed": "A payment attempt failed (attrs: invoice_id, amount, attempt_count, failure_code)",
    "invoice_past_due": "An invoice is open past its due date (attrs: invoice_id, amount, days_overdue)",
    "card_expiring": "The default card expires soon (attrs: exp_month, exp_year, days_left)",
    "billing_details_missing": "A paying customer has no payment method on file",
    "mrr_changed": "Monthly recurring revenue changed (attrs: mrr_before, mrr_after, delta)",
    # HubSpot
    "lifecycle_changed": "The company's lifecycle stage changed (attrs: from, to)",
    "contact_unsubscribed": "A contact unsubscribed from marketing email (attrs: contact_id)",
    "deal_won": "A deal was won (attrs: deal_id, amount, dealname)",
    "deal_lost": "A deal was lost (attrs: deal_id, amount, dealname)",
    "renewal_due": "A renewal is coming up (attrs: deal_id, renewal_date, days_left, amount)",
    "owner_changed": "The company owner (CSM) changed (attrs: from, to)",
    "nps_changed": "The NPS/survey property changed (attrs: score, previous)",
    # BuiltWith
    "widget_detected": "Our widget was detected on the customer's site (attrs: technology, domain)",
    "widget_removed": "Our widget disappeared from the customer's site (attrs: technology, domain)",
    "competitor_detected": "A competitor's technology appeared (attrs: technology, domain)",
    "competitor_removed": "A competitor's technology disappeared (attrs: technology, domain)",
}

ACCOUNT_FACTS: dict[str, str] = {
    "owner_id": "HubSpot owner id of the company (the CSM)",
    "owner_name": "Owner's name",
    "owner_email": "Owner's e-mail",
    "lifecycle_stage": "HubSpot lifecycle stage",
    "renewal_date": "Next renewal date (ISO date) from the renewal deal or subscription period end",
    "customer_since": "When the customer started (ISO)",
    "mrr": "Monthly recurring revenue in dollars, summed over active subscriptions",
    "plan": "Plan / price nickname of the main subscription",
    "seats": "Seats (quantity) on active subscriptions",
    "subscription_status": "Status of the main Stripe subscription",
    "nps": "Latest NPS score (0-10) from the configured property",
    "contacts_total": "Contacts associated with the company",
    "contacts_unsubscribed": "Of those, how many opted out of marketing email",
    "last_touch": "Last time the CSM contacted the company (notes_last_contacted)",
    "has_payment_method": "Whether a default payment method is on file",
    "card_expires": "Default card expiry as YYYY-MM",
    "widget_present": "Our widget is currently detected on the site",
    "competitors": "Competitor technologies currently detected",
}
