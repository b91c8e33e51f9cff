"""Operation commands: run (scheduler or --once) and demo."""

from __future__ import annotations

import click

from hub.cli.util import Env, console, err_console, pass_env


def register(cli: click.Group) -> None:
    cli.add_command(run)
    cli.add_command(demo)


@click.command()
@click.option("--once", is_flag=True, help="Run the whole pipeline once and exit (for cron/CI).")
@click.option("--dry-run", is_flag=True, help="Do everything but write to the CRM.")
@pass_env
def run(env: Env, once: bool, dry_run: bool) -> None:
    """Keep every connection on its schedule: sync → map → health → playbooks → push."""
    from hub.scheduler import HubScheduler, run_once

    config = env.config()
    store = env.store()
    if once:
        result = run_once(store, config, dry_run=dry_run)
        for step, error in result.errors.items():
            err_console.print(f"[red]{step} failed:[/] {error}", highlight=False)
        if result.failed_connections:
            err_console.print(
                f"[yellow]connections with errors:[/] {', '.join(result.failed_connections)} (see hub status)",
                highlight=False,
            )
        console.print(
            f"Pipeline finished in {result.duration_s:.1f}s: {'ok' if result.ok else 'with problems'}.",
            highlight=False,
        )
        if not result.ok:
            raise SystemExit(1)
        return

    def report(name, result):
        state = "ok" if result.ok else "with problems (see hub status)"
        console.print(
            f"{name}: cycle finished in {result.duration_s:.1f}s {state}", highlight=False
        )

    scheduler = HubScheduler(store, config, dry_run=dry_run, on_result=report)
    scheduler.start()
    console.print(
        f"hub run: {len(config.connections)} connections scheduled on {env.database()}; Ctrl-C to stop.",
        highlight=False,
    )
    scheduler.wait()
    console.print("Stopped cleanly.")


@click.command()
@click.option(
    "--companies",
    default=500,
    show_default=True,
    type=click.IntRange(10, 200_000),
    help="Companies in the sandbox world.",
)
@click.option(
    "--seed", default=42, show_default=True, help="World seed: the same seed tells the same story."
)
@click.option(
    "--db",
    "demo_db",
    type=click.Path(dir_okay=False),
    help="Database to create (default ./hub-demo.db; replaced if it is a hub database).",
)
@click.option(
    "--weeks",
    default=4,
    show_default=True,
    type=click.IntRange(0, 26),
    help="Simulated weeks of incremental cycles after the first sync.",
)
@click.option("--serve", is_flag=True, help="Then serve the demo database in the web app.")
@click.option("--port", default=8321, show_default=True, help="Port for --serve (0 = any free).")
@pass_env
def demo(
    env: Env, companies: int, seed: int, demo_db: str | None, weeks: int, serve: bool, port: int
) -> None:
    """Run the whole product against the built-in sandbox: no config, no credentials."""
    from hub.demo import run_demo

    result = run_demo(
        demo_db or env.db_path or "hub-demo.db",
        companies=companies,
        seed=seed,
        weeks=weeks,
        console=console,
    )
    if serve:
        from hub.cli.serve import run_server

        run_server(result.db_path, None, port=port)
