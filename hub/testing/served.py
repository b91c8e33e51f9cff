"""A served sandbox and a ``hub.toml`` pointed at it: the set-up of every test (ours or a
plugin's) that drives the real CLI or a subprocess against the fakes over loopback HTTP::

    from hub.testing import build_sandbox, hub_toml, serving

    with serving(build_sandbox(companies=12, seed=5)) as server:
        conf = hub_toml(tmp_path / "hub.toml", server.url, [name], env_prefix="T")
        conf.set_env(monkeypatch)  # the env: references' values, for the CLI in process
        CliRunner().invoke(cli, ["-c", str(conf), "sync", "--json"])

``name`` is a connection the sandbox serves. The connections come from the sandbox's own ready config (``hub sandbox serve
--print-config``), so the credentials and the settings each connector needs stay with the
sandbox; this module only picks connections, adds settings and tables, and (with
``env_prefix``) moves every secret setting to an ``env:`` reference, as a real config would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from hub.sandbox.world import build_sandbox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass
class HubConfig:
    """A written ``hub.toml`` and the environment its ``env:`` references read."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    def set_env(self, monkeypatch: Any) -> None:
        """Set ``env`` for one test (pytest's ``monkeypatch``)."""
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


@contextmanager
def serving(sandbox: Any) -> Iterator[Any]:
    """Serve ``sandbox`` on a loopback port for the block; the server (``.url``) is yielded
    and stopped after, whatever happens."""
    server = sandbox.serve()
    try:
        yield server
    finally:
        server.stop()


def hub_toml(
    path: Path,
    url: str,
    connections: Iterable[str] | None = None,
    *,
    database: str | Path = "hub.db",
    settings: dict[str, dict[str, Any]] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    extra: str = "",
    env_prefix: str | None = None,
    push: bool = True,
) -> HubConfig:
    """Write a ``hub.toml`` (mode 600) for the sandbox served at ``url``.

    ``connections``: the built-in connections to keep (None: all the sandbox serves);
    ``settings``: per connection, settings to add or replace (``{"crm": {"burst_limit":
    250}}``); ``options``: per connection, keys beside ``connector`` (``schedule``…);
    ``extra``: TOML merged over the rest (``[push]``, ``[webhooks]``…); ``env_prefix``: each
    secret setting becomes ``env:<PREFIX>_<CONNECTION>_<SETTING>`` and ``HubConfig.env``
    holds the values; ``push``: keep the sandbox's pusher tables for the kept connections.
    """
    from hub.sandbox.config import config_toml

    ready = tomllib.loads(config_toml(url, []))
    wanted = set(ready["connections"] if connections is None else connections)
    doc: dict[str, Any] = {"hub": {"database": str(database)}, "connections": {}}
    env: dict[str, str] = {}
    for name, table in ready["connections"].items():
        if name not in wanted:
            continue
        table = {**table, **(options or {}).get(name, {})}
        values = {**table.get("settings", {}), **(settings or {}).get(name, {})}
        if env_prefix:
            for key in _secret_keys(table["connector"]) & set(values):
                var = f"{env_prefix}_{name}_{key}".upper()
                env[var], values[key] = str(values[key]), f"env:{var}"
        doc["connections"][name] = {**table, "settings": values}
    for section in ("timeline", "push"):
        if section == "push" and not push:
            continue
        kept = {
            key: value
            for key, value in ready.get(section, {}).items()
            if key in wanted or value.get("connection") in wanted
        }
        if kept:
            doc[section] = kept
    _merge(doc, tomllib.loads(extra))
    path.write_text(_dump(doc))
    path.chmod(0o600)
    return HubConfig(path, env)


def _secret_keys(connector: str) -> set[str]:
    """The settings a connector declares as secrets (``SecretStr``)."""
    from hub.registry import get_registry

    model = get_registry().connectors[connector].Settings
    return {
        name
        for name, info in model.model_fields.items()
        if SecretStr in (info.annotation, *getattr(info.annotation, "__args__", ()))
    }


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _dump(doc: dict[str, Any], prefix: str = "", header: str = "") -> str:
    """TOML for nested tables (and arrays of tables) of strings, numbers, booleans and
    lists of those."""
    lines, tables = [], []
    for key, value in doc.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        ):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    out = ""
    if prefix and (lines or header or not tables):
        out += (header or f"[{prefix}]") + "\n"
    out += "".join(line + "\n" for line in lines)
    for key, value in tables:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out += _dump(value, name)
        else:
            out += "".join(_dump(item, name, f"[[{name}]]") for item in value)
    return out


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value))


__all__ = ["HubConfig", "build_sandbox", "hub_toml", "serving"]
