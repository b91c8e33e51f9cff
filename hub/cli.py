"""Command-line interface (placeholder while the foundation lands)."""

from __future__ import annotations

import click


@click.group()
def cli() -> None:
    """hub: customer-success integration hub."""


def main() -> None:
    cli()
