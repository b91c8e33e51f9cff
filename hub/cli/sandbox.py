"""``hub sandbox``: run the fake APIs over loopback HTTP for SDKs, tools and trials."""

from __future__ import annotations

import signal
import threading
import time

import click

from hub.cli.util import console


def register(cli: click.Group) -> None:
    cli.add_command(sandbox)


@click.group()
def sandbox() -> None:
    """The built-in sandbox: stateful fakes of Zendesk, Stripe, HubSpot and BuiltWith.

    \b
    Examples:
      hub sandbox serve
    """


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
    help="Advance the world one day every N seconds (0 = never).",
)
@click.option(
    "--start",
    "start",
    default="today",
    show_default=True,
    help="World clock start: 'today' (UTC midnight) or YYYY-MM-DD.",
)
def serve(
    host: str,
    port: int,
    seed: int,
    companies: int,
    limits: bool,
    advance_every: float,
    start: str,
) -> None:
    """Serve the sandbox APIs on one loopback port until Ctrl-C.

    \b
    Examples:
      hub sandbox serve
      hub sandbox serve --port 8111 --companies 200 --limits
    """
    import datetime as dt

    from hub.errors import ConfigError
    from hub.registry import get_registry
    from hub.sandbox.world import CREDENTIALS, advance, build_sandbox

    if start == "today":
        start_at = dt.datetime.now(dt.timezone.utc).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    else:
        try:
            start_at = dt.datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise ConfigError(
                f"--start {start!r} is not a date", hint="use 'today' or YYYY-MM-DD"
            ) from None
    started = time.perf_counter()
    with console.status(f"Building a world of {companies:,} companies (seed {seed})…"):
        sb = build_sandbox(
            companies=companies,
            seed=seed,
            start=start_at,
            enforce_limits=limits,
            extra_apis=list(get_registry().sandbox_apis.values()),
        )
    server = sb.serve(host, port)
    url = server.url
    console.print(
        f"Sandbox ready in {time.perf_counter() - started:.1f}s at [bold]{url}[/] (world clock {sb.world.now():%Y-%m-%d %H:%M} UTC)",
        soft_wrap=True,
    )
    # soft_wrap: a credentials line must survive copy-paste whatever the terminal width.
    for name, api in sb.apis.items():
        creds = CREDENTIALS.get(name) or dict(getattr(api, "credentials", {}) or {})
        fields = "  ".join(f'{k} = "{v}"' for k, v in creds.items() if k != "oauth_token")
        label = {"hubspot": "HubSpot", "builtwith": "BuiltWith"}.get(name, name.capitalize())
        console.print(
            f'  {label:<10} base_url = "{url}"  {fields}'.rstrip(), highlight=False, soft_wrap=True
        )
    console.print("These are sandbox-only credentials. Press Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.wait(advance_every or 3600):
            if advance_every:
                advance(sb, 1)
                console.print(f"World advanced to {sb.world.now():%Y-%m-%d}", highlight=False)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        console.print("Sandbox stopped.")
