"""A port someone else holds: one line naming the port and the fix, never "internal error"."""

from __future__ import annotations

import os
import socket

from click.testing import CliRunner

from hub.cli import cli


def test_serve_and_sandbox_serve_say_the_port_is_in_use(tmp_path):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    config = tmp_path / "hub.toml"
    config.write_text(f'[hub]\ndatabase = "{tmp_path / "hub.db"}"\n')
    os.chmod(config, 0o600)
    expected = f"Error: port {port} is in use: pick another with --port (or stop what holds it)"
    try:
        for args in (
            ["sandbox", "serve", "--port", str(port), "--companies", "10"],
            ["-c", str(config), "serve", "--port", str(port)],
        ):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 1, result.output
            assert result.stderr.strip().splitlines()[-1] == expected, result.stderr
            assert "internal error" not in result.stderr
    finally:
        held.close()
