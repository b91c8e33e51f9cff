"""Stripe fake: versions, schedules, resource names, expandable fields, filters and fixed tables."""

from __future__ import annotations

DAY = 86400
HOUR = 3600
CURRENT_API_VERSION = "2026-10-28.endive"  # what stripe-python 16 pins
LEGACY_API_VERSION = "2024-06-20"
SHAPE_CHANGE = "2025-03-31"  # basil: periods moved to items, invoice `paid` went away
EVENT_RETENTION = 30 * DAY
HISTORY_DAYS = 35  # events are generated for this much history; the oldest are past retention
HISTORY_PERIODS = 6  # invoices per subscription at seed
RETRY_OFFSETS = (3 * DAY, 5 * DAY, 7 * DAY)  # after attempts 1, 2, 3 (Smart-Retries-like)
MAX_ATTEMPTS = 4
UNCOLLECTIBLE_AFTER = (
    30 * DAY
)  # after the last attempt (or the due date) the invoice is written off
DAYS_UNTIL_DUE = 30
REQUESTS_PER_SECOND = 25
IDEMPOTENCY_TTL = DAY
MAX_EXPAND_DEPTH = 4
_DOCS = "https://stripe.com/docs/error-codes/"

# resource (URL segment) -> kind (object name), and the other way round
RESOURCES = {
    "customers": "customer",
    "payment_methods": "payment_method",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "events": "event",
}
KINDS = {v: k for k, v in RESOURCES.items()}
_ID_PREFIX = {
    "customer": "cus",
    "payment_method": "pm",
    "subscription": "sub",
    "invoice": "in",
    "charge": "ch",
    "event": "evt",
}
_SHIFT = 40  # ids carry a 10-hex-digit counter
_MASK = (1 << _SHIFT) - 1
_NICE_NAME = {
    "customer": "customer",
    "payment_method": "PaymentMethod",
    "subscription": "subscription",
    "invoice": "invoice",
    "charge": "charge",
    "event": "event",
    "payment_intent": "payment_intent",
    "invoice_payment": "invoice payment",
    "account": "account",
}

# Fields that can be expanded (dotted path in the object -> kind of the object it names).
_EXPANDABLE: dict[str, dict[str, str]] = {
    "customer": {
        "invoice_settings.default_payment_method": "payment_method",
        "default_source": "payment_method",
    },
    "payment_method": {"customer": "customer"},
    "subscription": {
        "customer": "customer",
        "latest_invoice": "invoice",
        "default_payment_method": "payment_method",
    },
    "invoice": {
        "customer": "customer",
        "subscription": "subscription",
        "default_payment_method": "payment_method",
        "charge": "charge",
    },
    "charge": {"customer": "customer", "invoice": "invoice"},
    "event": {},
}

# List filters Stripe has, per resource (besides limit/cursors/created/expand).
_LIST_PARAMS: dict[str, set[str]] = {
    "customer": {"email", "test_clock"},
    "payment_method": {"customer", "type"},
    "subscription": {
        "customer",
        "status",
        "price",
        "collection_method",
        "current_period_start",
        "current_period_end",
        "test_clock",
        "automatic_tax",
    },
    "invoice": {"customer", "status", "subscription", "collection_method", "due_date"},
    "charge": {"customer", "payment_intent", "transfer_group"},
    "event": {"type", "types", "delivery_success"},
}
_COMMON_LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
_CUSTOMER_WRITE_PARAMS = {
    "address",
    "description",
    "email",
    "metadata",
    "name",
    "phone",
    "invoice_settings",
    "expand",
    "preferred_locales",
}
_SUB_STATUSES = {
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "trialing",
    "paused",
    "all",
    "ended",
}
_INVOICE_STATUSES = {"draft", "open", "paid", "uncollectible", "void"}

# Injectable client errors (taken after authentication), in Stripe's shapes.
_CLIENT_FAULTS = {
    "400": (400, "invalid_request_error", "parameter_invalid_empty", "Injected bad request."),
    "401": (401, "invalid_request_error", None, "Invalid API Key provided: {key}"),
    "403": (
        403,
        "invalid_request_error",
        None,
        "The provided key '{key}' does not have the required permissions for this endpoint on account "
        "'acct_sandbox'. Having the 'rak_customer_read' permission would allow this request to continue.",
    ),
    "404": (404, "invalid_request_error", "resource_missing", "No such object (injected)."),
    "409": (
        409,
        "invalid_request_error",
        "lock_timeout",
        "This object cannot be accessed right now because another API request or Stripe process is "
        "currently accessing it. If you see this error intermittently, retry the request.",
    ),
}
_FEEDBACK = [
    "too_expensive",
    "switched_service",
    "missing_features",
    "unused",
    "low_quality",
    "customer_service",
    "too_complex",
    "other",
]
_FEEDBACK_COMMENT = {
    "too_expensive": "Budget cut for next year, we can't justify the seats.",
    "switched_service": "We moved to {competitor}.",
    "missing_features": "No Salesforce integration and the reporting is too basic.",
    "unused": "The team never really adopted it.",
    "low_quality": "Too many bugs in the widget.",
    "customer_service": "Support took days to answer.",
    "too_complex": "Setup was too complicated for us.",
    "other": None,
}
_DECLINES = {
    # failure_code -> (outcome.reason, failure_message)
    "card_declined": ("generic_decline", "Your card was declined."),
    "insufficient_funds": ("insufficient_funds", "Your card has insufficient funds."),
    "expired_card": ("expired_card", "Your card has expired."),
}
_CITIES = [
    ("San Francisco", "US", "94107", "CA"),
    ("New York", "US", "10001", "NY"),
    ("Austin", "US", "73301", "TX"),
    ("London", "GB", "EC1A 1BB", None),
    ("Berlin", "DE", "10115", None),
    ("Paris", "FR", "75001", None),
    ("Toronto", "CA", "M5H 2N2", "ON"),
    ("Sydney", "AU", "2000", "NSW"),
]
_BRANDS = [("visa", 0.6), ("mastercard", 0.3), ("amex", 0.1)]
