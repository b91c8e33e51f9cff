"""Run a Singer tap against a local base URL. Executed by the tap's own venv python, not the hub's.

Usage: ``python singer_shim.py TAP URL TAP-ARGS...`` where TAP is ``tap-stripe``,
``tap-hubspot`` (singer-io) or ``meltano-tap-hubspot`` and TAP-ARGS are the tap's own
(``--config … --discover`` or ``--config … --catalog/--properties/--state …``).

The one patch: a base-URL rebinding. None of the three taps has a base-URL setting
(tap-stripe never exposes stripe-python's ``api_base``, singer-io tap-hubspot has a
``BASE_URL`` module constant, meltano-tap-hubspot hard-codes ``https://api.hubapi.com`` in
every stream's ``url_base``), and all three send through ``requests``. So the shim rewrites
the vendor's origin (``https://api.stripe.com``, ``https://api.hubapi.com``) to the sandbox
URL in ``requests``' transport adapter, just before the bytes leave: the tap's own code runs
unchanged and still sees the real URLs (tap-stripe's request timer parses them with a regex
hard-wired to ``api.stripe.com``, which is why rebinding ``stripe.api_base`` would not do).

Nothing else is patched: no discovery is narrowed, no start-up check answered locally, no
``expand[]`` dropped. Earlier versions needed four more patches; the sandbox now serves
``/v1/account(s)``, the customer expansions, ``/crm/v3/schemas``, the engagement and ticket
object types and the legacy v1/v2 endpoints that made them necessary.

Timing: the shim writes ``BENCH_SECONDS <s>`` and ``BENCH_CPU <s>`` (the tap process's CPU
seconds) to stderr around the tap's entry point (excludes interpreter start-up and imports).
"""

import sys
import time

ORIGINS = {
    "tap-stripe": ("https://api.stripe.com",),
    "tap-hubspot": ("https://api.hubapi.com",),
    "meltano-tap-hubspot": ("https://api.hubapi.com",),
}


def _rebind(origins, url):
    """Send every request for one of ``origins`` to ``url`` instead (same path and query)."""
    from requests.adapters import HTTPAdapter

    send = HTTPAdapter.send

    def rebound_send(self, request, *args, **kwargs):
        for origin in origins:
            if request.url.startswith(origin):
                request.url = url + request.url[len(origin) :]
                break
        return send(self, request, *args, **kwargs)

    HTTPAdapter.send = rebound_send


def _entry(tap):
    if tap == "tap-stripe":
        import tap_stripe

        return tap_stripe.main
    if tap == "tap-hubspot":
        import tap_hubspot

        return tap_hubspot.main
    from tap_hubspot.tap import TapHubspot

    return TapHubspot.cli


def main():
    tap, url = sys.argv[1], sys.argv[2].rstrip("/")
    sys.argv = [tap] + sys.argv[3:]
    _rebind(ORIGINS[tap], url)
    entry = _entry(tap)
    started, cpu = time.perf_counter(), time.process_time()
    try:
        entry()
    finally:
        sys.stderr.write(f"\nBENCH_SECONDS {time.perf_counter() - started:.3f}\n")
        sys.stderr.write(f"BENCH_CPU {time.process_time() - cpu:.3f}\n")
        sys.stderr.flush()


if __name__ == "__main__":
    main()
