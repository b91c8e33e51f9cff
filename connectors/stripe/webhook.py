"""How Stripe signs webhook deliveries, for ``hub serve``'s receiver (``hub.web.webhooks``).

``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]``; the signed payload is
``"<t>.<raw body>"``, HMAC-SHA256 with the endpoint's ``whsec_`` secret, hex. Any ``v1`` may
match (several are sent while a secret is being rolled). The body is one event object.
"""

from __future__ import annotations

import json

from hub.web.webhooks import (
    Delivery,
    Malformed,
    Refused,
    WebhookRequest,
    check_fresh,
    hmac_hex,
    matches,
)

# Event families the Stripe streams follow; others are stored and ignored.
SYNCED = ("customer.", "invoice.", "charge.", "payment_method.", "payment_intent.")
# The object streams an event family touches (longest prefix wins). ``events`` always runs:
# it is the stream that replays changes into the object tables; the object streams cost no
# request once listed, and re-read their resource if a stale bookmark made ``events`` reset.
TOUCHES = {
    "customer.subscription.": ("subscriptions", "invoices"),
    "customer.": ("customers", "payment_methods"),
    "invoice.": ("invoices", "charges"),
    "charge.": ("charges", "invoices"),
    "payment_intent.": ("charges", "invoices"),
    "payment_method.": ("payment_methods", "customers"),
}


class StripeWebhook:
    """``connectors.stripe``'s webhook verifier."""

    def verify(self, request: WebhookRequest, secret: str, tolerance: int) -> None:
        header = request.headers.get("stripe-signature", "")
        if not header:
            raise Refused("missing Stripe-Signature header")
        stamp, signatures = None, []
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key == "t":
                stamp = value
            elif key == "v1":
                signatures.append(value)
        if stamp is None or not stamp.isdigit() or not signatures:
            raise Refused("Stripe-Signature has no timestamp or no v1 signature")
        expected = hmac_hex(secret, stamp.encode() + b"." + request.body)
        if not any(matches(sig, expected) for sig in signatures):
            raise Refused("no v1 signature matches the endpoint secret")
        check_fresh(int(stamp), request.now, tolerance)

    def parse(self, body: bytes) -> list[Delivery]:
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise Malformed(f"not JSON ({exc.msg})") from None
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            raise Malformed("an event needs an id and a type")
        kind = str(event["type"])
        return [Delivery(str(event["id"]), kind, known=kind.startswith(SYNCED))]

    def streams(self, event_types: list[str]) -> list[str] | None:
        out = {"events"}
        for kind in event_types:
            prefix = max((p for p in TOUCHES if kind.startswith(p)), key=len, default=None)
            if prefix is None:
                return None  # an event family we do not know the reach of: sync everything
            out.update(TOUCHES[prefix])
        return sorted(out)
