"""How HubSpot signs webhook deliveries (v3), for ``hub serve``'s receiver.

``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(method + URI + body + timestamp)) with the
app's client secret; ``X-HubSpot-Request-Timestamp`` in milliseconds, refused when older
than five minutes. The URI is the one HubSpot called: behind a TLS proxy the hub sees
``http://`` where HubSpot signed ``https://``, so both are tried. The body is a JSON array
of events, each with ``eventId`` and ``subscriptionType``. HubSpot sends webhooks only to
project-based (developer platform) apps; see README.md.
"""

from __future__ import annotations

import json

from hub.web.webhooks import (
    Delivery,
    Malformed,
    Refused,
    WebhookRequest,
    check_fresh,
    hmac_b64,
    matches,
    parse_timestamp,
)

SYNCED = ("company.", "contact.", "deal.", "task.", "object.")
# Subscription types → the streams holding their object; an association change touches the
# objects on both sides, so it syncs them all; ``object.*`` (generic) too.
TOUCHES = {"company.": "companies", "contact.": "contacts", "deal.": "deals", "task.": "tasks"}


class HubSpotWebhook:
    """``connectors.hubspot``'s webhook verifier."""

    def verify(self, request: WebhookRequest, secret: str, tolerance: int) -> None:
        signature = request.headers.get("x-hubspot-signature-v3", "")
        stamp = request.headers.get("x-hubspot-request-timestamp", "")
        if not signature or not stamp:
            raise Refused("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
        urls = {request.url}
        if request.url.startswith("http://"):
            urls.add("https://" + request.url[len("http://") :])
        body = request.body.decode("utf-8", "replace")
        if not any(
            matches(signature, hmac_b64(secret, f"{request.method}{url}{body}{stamp}".encode()))
            for url in urls
        ):
            raise Refused("the v3 signature does not match the app's client secret")
        check_fresh(parse_timestamp(stamp), request.now, tolerance)

    def parse(self, body: bytes) -> list[Delivery]:
        try:
            events = json.loads(body)
        except ValueError as exc:
            raise Malformed(f"not JSON ({exc.msg})") from None
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not all(
            isinstance(e, dict) and e.get("eventId") is not None for e in events
        ):
            raise Malformed("expected a list of events with eventId")
        return [
            Delivery(
                str(e["eventId"]),
                str(e.get("subscriptionType") or ""),
                known=str(e.get("subscriptionType") or "").startswith(SYNCED),
            )
            for e in events
        ]

    def streams(self, event_types: list[str]) -> list[str] | None:
        out: set[str] = set()
        for kind in event_types:
            prefix = next((p for p in TOUCHES if kind.startswith(p)), None)
            if prefix is None or kind.endswith(".associationChange"):
                return None
            out.add(TOUCHES[prefix])
        return sorted(out) or None
