"""How Zendesk signs webhook deliveries, for ``hub serve``'s receiver (``hub.web.webhooks``).

``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(timestamp + body)) with the webhook's
signing secret, ``X-Zendesk-Webhook-Signature-Timestamp`` the timestamp. Zendesk states no
tolerance; the hub applies its own (``[webhooks] tolerance_seconds``) against replays. The
body is the webhook's JSON: event-subscribed webhooks carry ``id`` and ``type``; a
trigger-based one may carry neither, and is then identified by its body.
"""

from __future__ import annotations

import json

from hub.web.webhooks import (
    Delivery,
    Malformed,
    Refused,
    WebhookRequest,
    body_id,
    check_fresh,
    hmac_b64,
    matches,
    parse_timestamp,
)

# Event-subscribed webhooks name their object (``zen:event-type:ticket.status_changed``);
# the streams that hold it. A trigger-based webhook names nothing: every stream is synced.
TOUCHES = {
    "ticket.": ("tickets", "satisfaction_ratings"),
    "organization.": ("organizations",),
    "user.": ("users",),
}


class ZendeskWebhook:
    """``connectors.zendesk``'s webhook verifier."""

    # The incremental exports leave out the most recent minute: a sync started sooner than
    # that after the change would not see it, and the delivery would be spent for nothing.
    settle_seconds = 61

    def verify(self, request: WebhookRequest, secret: str, tolerance: int) -> None:
        signature = request.headers.get("x-zendesk-webhook-signature", "")
        stamp = request.headers.get("x-zendesk-webhook-signature-timestamp", "")
        if not signature or not stamp:
            raise Refused("missing X-Zendesk-Webhook-Signature or its timestamp")
        if not matches(signature, hmac_b64(secret, stamp.encode() + request.body)):
            raise Refused("the signature does not match the webhook's signing secret")
        check_fresh(parse_timestamp(stamp), request.now, tolerance)

    def parse(self, body: bytes) -> list[Delivery]:
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise Malformed(f"not JSON ({exc.msg})") from None
        if not isinstance(event, dict):
            raise Malformed("the body is not a JSON object")
        kind = str(event.get("type") or "trigger")
        return [Delivery(str(event.get("id") or body_id(body)), kind)]

    def streams(self, event_types: list[str]) -> list[str] | None:
        out: set[str] = set()
        for kind in event_types:
            name = kind.rsplit(":", 1)[-1]
            prefix = next((p for p in TOUCHES if name.startswith(p)), None)
            if prefix is None:
                return None
            out.update(TOUCHES[prefix])
        return sorted(out) or None
