"""``hub check`` answers fast: one attempt, a short timeout, a hint that names the cause."""

from __future__ import annotations

import socket
import time

from click.testing import CliRunner

from hub.checks import check_connections
from hub.config import parse_config
from tests.plugins.example import TOKEN


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_hosts_fail_in_one_attempt_with_a_hint(example_registry):
    silent = socket.socket()  # accepts connections (backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        urls = {
            "refused": f"http://127.0.0.1:{_closed_port()}",
            "silent": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "nodns": "http://no-such-host.invalid",
        }
        config = parse_config(
            {
                "connections": {
                    name: {"connector": "example", "settings": {"token": TOKEN, "base_url": url}}
                    for name, url in urls.items()
                }
            }
        )
        heard: list[str] = []
        started = time.monotonic()
        verdicts = check_connections(
            config, timeout=1.0, on_verdict=lambda v: heard.append(v.connection)
        )
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    by = {v.connection: v for v in verdicts}
    assert sorted(heard) == sorted(urls) and [v.connection for v in verdicts] == list(urls)
    assert not any(v.ok for v in verdicts)
    assert elapsed < 6, elapsed  # in parallel, one attempt each: not timeout x attempts
    assert "nothing listens at that address" in by["refused"].detail
    assert "did not answer in time" in by["silent"].detail
    assert "does not resolve" in by["nodns"].detail or "nothing listens" in by["nodns"].detail
    assert all("gave up after" not in v.detail for v in verdicts)


def test_cli_check_prints_a_line_per_connection(example_registry, tmp_path):
    from hub.cli import cli

    toml = tmp_path / "hub.toml"
    toml.write_text(
        '[hub]\ndatabase = "hub.db"\n[connections.ex]\nconnector = "example"\n'
        f'[connections.ex.settings]\ntoken = "{TOKEN}"\nbase_url = "http://127.0.0.1:{_closed_port()}"\n'
    )
    result = CliRunner().invoke(cli, ["-c", str(toml), "check"])
    assert result.exit_code == 1
    assert "✗ ex (example):" in result.output and "nothing listens" in result.output
