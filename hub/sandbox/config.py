"""A ready ``hub.toml`` for a served sandbox (``hub sandbox serve --print-config``): every
built-in connection pointed at the server, with the sandbox's own credentials."""

from __future__ import annotations

from hub.sandbox.base import COMPETITORS, OUR_TECHNOLOGY
from hub.sandbox.world import CREDENTIALS


def config_toml(url: str, extra: list[str]) -> str:
    """A ready hub.toml pointing every built-in connection at a served sandbox."""
    zd = CREDENTIALS["zendesk"]

    def table(name: str, schedule: str, settings: dict[str, str]) -> str:
        lines = [f'[connections.{name}]\nconnector = "{name}"\nschedule = "{schedule}"']
        lines.append(f"[connections.{name}.settings]")
        lines.append(f'base_url = "{url}"')
        lines.extend(f'{k} = "{v}"' for k, v in settings.items())
        return "\n".join(lines)

    blocks = [
        f"# hub.toml for `hub sandbox serve` at {url}.\n"
        "# Sandbox-only credentials: literal secrets are fine here (hub check warns anyway).",
        '[hub]\ndatabase = "hub.db"',
        table("stripe", "every 30m", {"api_key": CREDENTIALS["stripe"]["api_key"]}),
        table("hubspot", "every 30m", {"access_token": CREDENTIALS["hubspot"]["access_token"]}),
        table(
            "zendesk",
            "every 30m",
            {"subdomain": zd["subdomain"], "email": zd["email"], "api_token": zd["api_token"]},
        ),
        table("builtwith", "every 1d", {"api_key": CREDENTIALS["builtwith"]["api_key"]}),
        "[timeline.builtwith]\n"
        f'our_technologies = ["{OUR_TECHNOLOGY}"]\n'
        "competitors = [" + ", ".join(f'"{c}"' for c in COMPETITORS) + "]",
        '[push.hubspot]\nconnection = "hubspot"',
    ]
    if extra:
        blocks.append(
            "# Plugin fakes also served here (configure their connectors by hand): "
            + ", ".join(extra)
        )
    return "\n\n".join(blocks) + "\n"
