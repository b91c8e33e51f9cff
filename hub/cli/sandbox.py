"""``hub sandbox``: run the fake APIs over loopback HTTP for SDKs, tools and trials."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import click

from hub.cli.util import console, err_console

FAULT_HELP = (
    "Inject a fault: API:KIND[:PATH][:k=v...], e.g. hubspot:429:count=20:retry_after=2, "
    "stripe:500:/v1/invoices, hubspot:missing_scope:scope=crm.objects.contacts.write, "
    "zendesk:timeout. KIND, any API: 429 (retry_after=S, text_body=1), 500, 502, 503, 504, "
    "timeout (hang up), slow (delay=S), drop (disconnect); and the API's own: 400/401/403/404/409 "
    "(hubspot, stripe; a 403 fails every matching request, scopes=a,b naming the scopes in its "
    "body), missing_scope (hubspot: scope=a,b are taken from the token, so token info omits "
    "them and only requests needing them answer 403 MISSING_SCOPES), 400/401/403/404/422 "
    "(zendesk), 400/403/404 (builtwith), cursor_expired (stripe, zendesk: the next cursor "
    "request), partial_207 (hubspot batch writes; indexes=0,2 or ids=...). PATH is a regex "
    "searched in the request path; count=N (default -1: until cleared; the same for POST "
    "/__sandbox/faults), after=N (let N through first), method=GET. Repeatable."
)


def register(cli: click.Group) -> None:
    cli.add_command(sandbox)


@click.group()
def sandbox() -> None:
    """The built-in sandbox: stateful fakes of Zendesk, Stripe, HubSpot and BuiltWith.

    \b
    Examples:
      hub sandbox serve
    """


def parse_fault(spec: str) -> dict[str, Any]:
    """``API:KIND[:PATH][:k=v...]`` → keyword arguments of ``Sandbox.inject``."""
    from hub.errors import ConfigError

    parts = spec.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ConfigError(
            f"--fault {spec!r} is not API:KIND[:PATH][:k=v...]", hint="e.g. hubspot:429:count=5"
        )
    out: dict[str, Any] = {"api": parts[0], "kind": parts[1], "count": -1, "params": {}}
    for part in parts[2:]:
        key, eq, value = part.partition("=")
        if not eq:
            out["path"] = part
        elif key in ("count", "after"):
            try:
                out[key] = int(value)
            except ValueError:
                raise ConfigError(f"--fault {spec!r}: {key} must be a whole number") from None
        elif key == "method":
            out["method"] = value.upper()
        elif key in ("scope", "scopes"):
            out["params"][key] = [s for s in value.split(",") if s]
        else:
            try:
                out["params"][key] = float(value)
            except ValueError:
                out["params"][key] = value
    return out


def _start_time(start: str) -> Any:
    import datetime as dt

    from hub.errors import ConfigError

    now = dt.datetime.now(dt.timezone.utc)
    if start == "now":
        return now.replace(microsecond=0)
    if start == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        return dt.datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise ConfigError(
            f"--start {start!r} is not a date", hint="use 'now', 'today' or YYYY-MM-DD"
        ) from None


@sandbox.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (loopback only is advised).",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 = any free port).",
)
@click.option("--seed", default=0, show_default=True, help="World seed (same seed, same world).")
@click.option(
    "--companies",
    default=200,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Companies in the world.",
)
@click.option(
    "--limits/--no-limits",
    default=False,
    show_default=True,
    help="Enforce the real APIs' rate budgets.",
)
@click.option(
    "--advance-every",
    type=float,
    default=0,
    help="Also jump the world one day ahead every N seconds (0 = never).",
)
@click.option(
    "--start",
    "start",
    default="now",
    show_default=True,
    help="World clock start: 'now', 'today' (UTC midnight) or YYYY-MM-DD.",
)
@click.option(
    "--clock",
    type=click.Choice(["run", "frozen"]),
    default="run",
    show_default=True,
    help="'run': the world's clock follows wall time from --start (writes get fresh "
    "timestamps, each day's activity is generated as it passes); 'frozen': it moves only "
    "with --advance-every or POST /__sandbox/advance.",
)
@click.option("--fault", "faults", multiple=True, metavar="SPEC", help=FAULT_HELP)
@click.option(
    "--webhook-url",
    default=None,
    metavar="URL",
    help="Send signed webhooks (Stripe, Zendesk, HubSpot) to URL/<api> when the world "
    "changes, e.g. http://127.0.0.1:8321/webhooks ({api} in URL is replaced instead).",
)
@click.option(
    "--webhook-secret",
    "webhook_secrets",
    multiple=True,
    metavar="API=SECRET",
    help="Signing secret per API (default: sandbox ones, printed by --print-config).",
)
@click.option(
    "--webhook-fault",
    "webhook_faults",
    multiple=True,
    metavar="KIND[:COUNT]",
    help="Misbehave on the next deliveries: duplicate, out_of_order, replay, forge.",
)
@click.option(
    "--webhook-retry-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply the providers' webhook retry delays (0.001: a day of retries in 86 s).",
)
@click.option(
    "--warm/--no-warm",
    default=True,
    show_default=True,
    help="Once every API is seeded, generate in the background the records the fakes "
    "otherwise make as requests reach them (Stripe's billing histories), so a first pass "
    "reads instead of generating; requests arriving first are answered as usual.",
)
@click.option(
    "--print-config",
    is_flag=True,
    default=False,
    help="Print a ready hub.toml for the served world on stdout (the banner goes to stderr).",
)
def serve(
    host: str,
    port: int,
    seed: int,
    companies: int,
    limits: bool,
    advance_every: float,
    start: str,
    clock: str,
    faults: tuple[str, ...],
    webhook_url: str | None,
    webhook_secrets: tuple[str, ...],
    webhook_faults: tuple[str, ...],
    webhook_retry_scale: float,
    warm: bool,
    print_config: bool,
) -> None:
    """Serve the sandbox APIs on one loopback port until Ctrl-C.

    All four APIs answer on the same base URL (the path tells them apart); the banner prints
    each one's credentials. Serving starts once the world is built; each API's records are
    seeded in the background, a request waiting only for its own API's (the same world in
    any order; with --webhook-url they are seeded first). The world's clock runs from
    --start with wall time unless --clock frozen; each whole day passed generates that
    day's activity.

    \b
    Control endpoints (no auth, loopback):
      GET    /__sandbox/faults          list queued faults
      POST   /__sandbox/faults          {"api", "kind", "path"?, "method"?, "count"?,
                                         "after"?, "params"?} (as --fault: count
                                         defaults to -1; "scopes" a list or "a,b")
      DELETE /__sandbox/faults[?api=]   clear them
      POST   /__sandbox/advance?days=N  jump N days ahead, with their activity
      GET    /__sandbox/clock           the world's time
      GET/POST/DELETE /__sandbox/webhooks  webhook deliveries (with --webhook-url)

    \b
    Examples:
      hub sandbox serve
      hub sandbox serve --port 8111 --companies 200 --limits
      hub sandbox serve --fault hubspot:429:count=20:retry_after=2 --print-config > hub.toml
      hub sandbox serve --webhook-url http://127.0.0.1:8321/webhooks --print-config
    """
    from hub.errors import ConfigError
    from hub.registry import get_registry
    from hub.sandbox.config import config_toml
    from hub.sandbox.world import CREDENTIALS, advance, build_sandbox, catch_up
    from hub.vocabulary import vocabulary

    start_at = _start_time(start)
    fault_specs = [parse_fault(spec) for spec in faults]
    out = err_console if print_config else console
    started = time.perf_counter()
    with out.status(f"Building a world of {companies:,} companies (seed {seed})…"):
        sb = build_sandbox(
            companies=companies,
            seed=seed,
            start=start_at,
            enforce_limits=limits,
            extra_apis=list(get_registry().sandbox_apis.values()),
            # Serve at once and seed behind: a request waits only for its own fake. With
            # webhooks the fakes seed first (seeding must not send the history as deliveries).
            lazy=not webhook_url,
        )
    for spec in fault_specs:
        try:
            sb.inject(**spec)
        except ValueError as exc:
            raise ConfigError(f"--fault: {exc}") from None
    if webhook_url:
        from hub.sandbox.webhooks import from_options

        try:
            from_options(sb, webhook_url, webhook_secrets, webhook_faults, webhook_retry_scale)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if clock == "run":
        sb.world.clock.run()
    from hub.cli.util import port_errors

    with port_errors(port):
        server = sb.serve(host, port)
    url = server.url
    out.print(
        f"Sandbox ready in {time.perf_counter() - started:.1f}s at [bold]{url}[/] "
        f"(world clock {sb.world.now():%Y-%m-%d %H:%M} UTC, {clock})",
        soft_wrap=True,
    )
    # soft_wrap: a credentials line must survive copy-paste whatever the terminal width.
    for name, api in sb.apis.items():
        creds = CREDENTIALS.get(name) or dict(getattr(api, "credentials", {}) or {})
        fields = "  ".join(f'{k} = "{v}"' for k, v in creds.items() if k != "oauth_token")
        label = vocabulary().source(name).title
        out.print(
            f'  {label:<10} base_url = "{url}"  {fields}'.rstrip(), highlight=False, soft_wrap=True
        )
    for spec in fault_specs:
        out.print(f"  fault: {spec}", highlight=False, soft_wrap=True)
    if sb.webhooks is not None:
        out.print(f"  webhooks: {sb.webhooks.describe()}", highlight=False, soft_wrap=True)
    if print_config:
        extra = [n for n in sb.apis if n not in CREDENTIALS]
        click.echo(config_toml(url, extra), nl=False)
        if sb.webhooks is not None:
            click.echo("\n" + sb.webhooks.config_toml())
    out.print("These are sandbox-only credentials. Press Ctrl-C to stop.")
    if not all(api.seeded.is_set() for api in sb.apis.values()):
        out.print(
            "Seeding the fakes' records in the background; a request waits for its own API's.",
            highlight=False,
        )

        def seeded() -> None:
            sb.start_seeding().join()
            out.print(f"All APIs seeded in {time.perf_counter() - started:.1f}s", highlight=False)

        threading.Thread(target=seeded, name="hub-sandbox-seeded", daemon=True).start()
    warming = None
    if warm:
        from hub.sandbox.warm import WarmUp, start_warm_up

        def warmed(state: WarmUp) -> None:
            for name, (made, wall, cpu) in state.figures.items():
                if made:
                    label = vocabulary().source(name).title
                    out.print(
                        f"{label} warmed up: {made:,} companies' records generated in "
                        f"{wall:.1f}s ({cpu:.1f}s CPU)",
                        highlight=False,
                    )

        warming = start_warm_up(sb, warmed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    last_jump = time.monotonic()
    tick = min(advance_every or 60.0, 60.0)
    try:
        while not stop.wait(tick):
            if advance_every and time.monotonic() - last_jump >= advance_every:
                advance(sb, 1)
                last_jump = time.monotonic()
                out.print(f"World advanced to {sb.world.now():%Y-%m-%d}", highlight=False)
            if sb.world.clock.running and catch_up(sb):
                out.print(f"World day passed: {sb.world.now():%Y-%m-%d}", highlight=False)
    except KeyboardInterrupt:
        pass
    finally:
        if warming is not None:
            warming.stop()
        server.stop()
        if sb.webhooks is not None:
            sb.webhooks.close()
        out.print("Sandbox stopped.")
