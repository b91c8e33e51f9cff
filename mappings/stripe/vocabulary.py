"""What the Stripe mapping puts on the timeline: its source, event types and account facts.

``hub.vocabulary`` collects these when the mapping registers; health, playbooks and the CLI
read them from there. The attrs named in each description are a contract other parts build
on (billing measures, dunning playbooks): keep their names.
"""

from __future__ import annotations

from hub.vocabulary import EventType, Source

SOURCE_INFO = Source("stripe", label="Stripe", letter="S", fact_rank=10, style="magenta")
EVENT_TYPES = [
    EventType(
        "subscription_started",
        "A subscription started (attrs: subscription_id, plan, mrr, seats)",
        polarity="neutral",
        noun=("subscription started", "subscriptions started"),
    ),
    EventType(
        "subscription_upgraded",
        "Seats or price went up (attrs: mrr_before, mrr_after, seats_before, seats_after)",
        polarity="positive",
        noun=("upgrade", "upgrades"),
    ),
    EventType(
        "subscription_downgraded",
        "Seats or price went down (attrs: mrr_before, mrr_after, seats_before, seats_after)",
        polarity="negative",
        noun=("downgrade", "downgrades"),
    ),
    EventType(
        "subscription_cancelled",
        "A subscription was cancelled (attrs: subscription_id, reason, feedback, comment, "
        "ended_at, mrr, ends_account: true when it ends the customer's last active "
        "subscription; false is a contraction, e.g. an add-on)",
        polarity="negative",
        noun=("cancellation", "cancellations"),
    ),
    EventType(
        "invoice_paid",
        "An invoice was paid on time (attrs: invoice_id, amount)",
        polarity="positive",
        noun=("invoice paid on time", "invoices paid on time"),
    ),
    EventType(
        "invoice_paid_late",
        "An invoice was paid after its due date (attrs: invoice_id, amount, days_late)",
        polarity="negative",
        noun=("invoice paid late", "invoices paid late"),
    ),
    EventType(
        "payment_failed",
        "Payment of an invoice failed, one event per invoice however many attempts, dated at "
        "the first failure (attrs: invoice_id, amount, attempt_count, retrying, "
        "next_attempt_at, failure_code)",
        polarity="negative",
        noun=("failed payment", "failed payments"),
    ),
    EventType(
        "invoice_past_due",
        "An invoice is past due now: retries exhausted, subscription past due or unpaid, or a "
        "sent invoice's due date passed; never while a retry is scheduled (attrs: invoice_id, "
        "amount, days_overdue, reason: retries_exhausted|subscription_past_due|unpaid|"
        "due_date_passed)",
        polarity="negative",
        noun=("invoice past due", "invoices past due"),
    ),
    EventType(
        "invoice_written_off",
        "An invoice was marked uncollectible: bad debt (attrs: invoice_id, amount owed)",
        polarity="negative",
        noun=("invoice written off", "invoices written off"),
    ),
    EventType(
        "card_expiring",
        "The default card expires soon (attrs: exp_month, exp_year, days_left)",
        polarity="negative",
        noun=("card-expiry warning", "card-expiry warnings"),
    ),
    EventType(
        "billing_details_missing",
        "A paying customer has no payment method on file",
        polarity="negative",
        noun=("missing billing details notice", "missing billing details notices"),
    ),
    EventType(
        "mrr_changed",
        "Monthly recurring revenue changed (attrs: mrr_before, mrr_after, delta)",
        polarity="neutral",
        noun=("MRR change", "MRR changes"),
    ),
]
FACTS = {
    "mrr": "Monthly recurring revenue in dollars, summed over active subscriptions",
    "plan": "Plan / price nickname of the main subscription",
    "seats": "Seats (quantity) on active subscriptions",
    "subscription_status": "Status of the main Stripe subscription",
    "active_subscriptions": "Subscriptions still billing (active, trialing, past due, unpaid)",
    "churned_at": "When the last subscription ended, if none is active (ISO), else null",
    "has_payment_method": "Whether a default payment method is on file",
    "card_expires": "Default card expiry as YYYY-MM",
}
