"""Run a Singer tap against a local base URL. Executed by the tap's own venv python, not the hub's.

Usage: ``python singer_shim.py stripe|hubspot URL TAP-ARGS...`` (``--config … --discover`` or
``--config … --catalog/--properties …``). Neither tap has a base-URL setting, so this shim
points it at the sandbox with the smallest patches that work, and each is listed here so the
benchmark table can say what it took:

tap-stripe 3.x
  1. ``stripe.api_base = URL`` (the stripe-python 5 global the tap never exposes);
  2. ``apply_request_timer_to_client`` is replaced: it matches every request URL against the
     hard-coded regex ``https?://api\\.stripe\\.com/v1/(\\w+)`` and crashes on any other host;
  3. ``stripe.Account.retrieve`` (its "verify connectivity" call at start-up) answers locally:
     the sandbox does not fake ``/v1/accounts``;
  4. the customers stream's ``expand[]`` of ``data.sources``, ``data.subscriptions`` and
     ``data.tax_ids`` is dropped: the sandbox answers 400 "cannot be expanded" for these
     (real Stripe expands them), so real responses would be larger than here.

tap-hubspot 4.x
  1. ``tap_hubspot.BASE_URL = URL`` (a module constant);
  2. the custom-object probe (``GET /crm/v3/schemas``, in discovery and at the start of every
     sync) is skipped: the sandbox has no custom objects and answers 404, which the tap retries
     5 times, 10 s apart, then dies;
  3. discovery is limited to the ``contacts`` stream: companies, deals and most other streams
     use HubSpot's legacy v1/v2 endpoints (``/companies/v2/companies/paged`` plus one
     ``/companies/v2/companies/{id}`` request per company), which the sandbox does not fake.

Timing: the shim writes ``BENCH_SECONDS <s>`` to stderr around the tap's ``main()`` (excludes
interpreter start-up and imports).
"""

import sys
import time


def _patch_stripe(url):
    import stripe
    import tap_stripe

    stripe.api_base = url
    tap_stripe.apply_request_timer_to_client = lambda client: None

    def _retrieve(account_id=None, **kwargs):
        return stripe.util.convert_to_stripe_object(
            {
                "id": account_id or "acct_sandbox",
                "object": "account",
                "settings": {"dashboard": {"display_name": "hub sandbox"}},
            }
        )

    stripe.Account.retrieve = staticmethod(_retrieve)
    tap_stripe.STREAM_TO_EXPAND_FIELDS["customers"] = []
    return tap_stripe.main


def _patch_hubspot(url):
    import tap_hubspot

    tap_hubspot.BASE_URL = url
    tap_hubspot.generate_custom_streams = lambda mode, catalog=None: []
    tap_hubspot.STREAMS[:] = [s for s in tap_hubspot.STREAMS if s.tap_stream_id == "contacts"]
    return tap_hubspot.main


def main():
    tap, url = sys.argv[1], sys.argv[2].rstrip("/")
    sys.argv = [f"tap-{tap}"] + sys.argv[3:]
    entry = {"stripe": _patch_stripe, "hubspot": _patch_hubspot}[tap](url)
    started = time.perf_counter()
    try:
        entry()
    finally:
        sys.stderr.write(f"\nBENCH_SECONDS {time.perf_counter() - started:.3f}\n")
        sys.stderr.flush()


if __name__ == "__main__":
    main()
