"""``hub.toml``: loading, validation and secret references.

Layout::

    [hub]                      database path, log level, secrets file
    [connections.<name>]       connector, schedule, enabled, [connections.<name>.settings]
    [identity]                 manual account overrides, free-mail domains
    [health] [playbooks] [push] [scheduler]   validated by their own modules

Secrets are written as references: ``"env:STRIPE_API_KEY"`` (environment variable),
``"file:/run/secrets/stripe"`` (a file only its owner can read) or ``"secret:NAME"`` (a key
of ``[hub] secrets_file``). A literal secret works but ``hub check`` warns about it. Errors
name the file, the key path and the fix in one line and never echo a value.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_CONFIG = "hub.toml"
SECRET_PREFIXES = ("env:", "file:", "secret:")
SECRET_KEY_HINTS = ("key", "token", "secret", "password")


def _mask(key: str, value: Any) -> Any:
    if (
        isinstance(value, str)
        and any(h in key.lower() for h in SECRET_KEY_HINTS)
        and not value.startswith(SECRET_PREFIXES)
    ):
        return "**********"
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HubSection(_Strict):
    """``[hub]``: where the database lives and how loud the logs are."""

    database: str = "hub.db"
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    secrets_file: str | None = None


class ConnectionConfig(_Strict):
    """``[connections.<name>]``: one configured source."""

    connector: str
    enabled: bool = True
    schedule: str | None = Field(default=None, description="'every 30m', 'every 2h' or a cron line")
    settings: dict[str, Any] = Field(default_factory=dict)

    def __repr_args__(self):
        # Settings may hold literal secrets: never show their values in repr().
        for key, value in super().__repr_args__():
            if key == "settings":
                value = {k: _mask(k, v) for k, v in self.settings.items()}
            yield key, value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            from hub.schedule import parse_schedule

            try:
                parse_schedule(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value


class IdentitySection(_Strict):
    """``[identity]``: manual links and domain rules."""

    overrides: dict[str, str] = Field(default_factory=dict)
    """Entity key (``stripe:customer:cus_123``) or domain → account id (HubSpot company id)."""
    freemail_domains: list[str] = Field(default_factory=list)
    """Extra free-mail domains that must never link accounts."""


class SchedulerSection(_Strict):
    """``[scheduler]``: how ``hub run`` behaves."""

    misfire_grace_seconds: int = Field(default=300, ge=1)
    """A run that could not start on time still runs if it is at most this late."""
    run_on_start: bool = True
    """Run every connection once right away when ``hub run`` starts."""
    dry_run: bool = False
    """Never write to the CRM from ``hub run`` (same as ``hub run --dry-run``)."""


class Config(_Strict):
    """The whole ``hub.toml``."""

    hub: HubSection = Field(default_factory=HubSection)
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    identity: IdentitySection = Field(default_factory=IdentitySection)
    timeline: dict[str, Any] = Field(default_factory=dict)
    health: dict[str, Any] = Field(default_factory=dict)
    playbooks: dict[str, Any] = Field(default_factory=dict)
    push: dict[str, Any] = Field(default_factory=dict)
    portfolio: dict[str, Any] = Field(default_factory=dict)  # hub.portfolio.validate_config
    webhooks: dict[str, Any] = Field(default_factory=dict)  # hub.web.webhooks.validate_config
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)

    # Set by ``load_config``: where the file was and which secrets were literal.
    _path: Path | None = None
    _warnings: list[str] = []

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    def database_path(self) -> str:
        db = self.hub.database
        if db == ":memory:" or os.path.isabs(db) or self._path is None:
            return db
        return str((self._path.parent / db).resolve())

    def connection(self, name: str) -> ConnectionConfig:
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none configured"
            raise ConfigError(
                f"no connection named {name!r} in {self._path or 'hub.toml'}",
                hint=f"connections: {known}",
            ) from None

    def resolved_settings(self, name: str) -> dict[str, Any]:
        """The connection's settings with secret references replaced by their values."""
        conn = self.connection(name)
        return {
            k: self._resolve(v, f"connections.{name}.settings.{k}")
            for k, v in conn.settings.items()
        }

    def _resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: self._resolve(v, f"{where}.{k}") for k, v in value.items()}
        if not isinstance(value, str) or not value.startswith(SECRET_PREFIXES):
            return value
        scheme, _, ref = value.partition(":")
        origin = self._path or "hub.toml"
        if scheme == "env":
            if ref not in os.environ:
                raise ConfigError(
                    f"{origin}: {where} refers to environment variable {ref} which is not set",
                    hint=f"export {ref}=… before running hub",
                )
            return os.environ[ref]
        if scheme == "file":
            path = Path(ref).expanduser()
            if self._path is not None and not path.is_absolute():
                path = self._path.parent / path
            if not path.is_file():
                raise ConfigError(
                    f"{origin}: {where} refers to secret file {path} which does not exist",
                    hint="create it (chmod 600) or fix the path",
                )
            return path.read_text().strip()
        secrets = self._secrets_file()
        if ref not in secrets:
            raise ConfigError(
                f"{origin}: {where} refers to secret {ref!r} which is not in the secrets file",
                hint="add it to [hub] secrets_file",
            )
        return secrets[ref]

    def _secrets_file(self) -> dict[str, Any]:
        if not self.hub.secrets_file:
            raise ConfigError(
                f"{self._path or 'hub.toml'}: a 'secret:' reference needs [hub] secrets_file",
                hint="set secrets_file or use env:VAR",
            )
        path = Path(self.hub.secrets_file).expanduser()
        if self._path is not None and not path.is_absolute():
            path = self._path.parent / path
        try:
            with path.open("rb") as fh:
                return tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(
                f"secrets file {path} does not exist",
                hint="create it (chmod 600) or fix [hub] secrets_file",
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"secrets file {path} is not valid TOML: {exc}", hint="fix its syntax"
            ) from None


def validate_section(model: type[BaseModel], data: Any, where: str, origin: Any = None) -> Any:
    """Validate ``data`` against ``model``; the first error becomes one ``ConfigError`` line
    naming ``origin`` (the file), the key path under ``where`` and the fix, never the value.

    Every part of the hub that validates a piece of hub.toml (connections, health, playbooks,
    push) goes through here, so the errors read alike.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join([p for p in [where, *(str(x) for x in first["loc"])] if p])
        prefix = f"{origin}: " if origin else ""
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields))
            raise ConfigError(
                f"{prefix}unknown key {loc}",
                hint=f"check the spelling; allowed here: {allowed}; see config.example.toml",
            ) from None
        if first["type"] == "missing":
            raise ConfigError(
                f"{prefix}{loc} is required", hint="add it (see config.example.toml)"
            ) from None
        # ``input`` is deliberately not shown: it may be a secret.
        msg = first["msg"].replace("Value error, ", "")
        hint = None if msg.endswith(")") else "fix the value (see config.example.toml)"
        raise ConfigError(f"{prefix}{loc}: {msg}", hint=hint) from None


def _format_error(path: Path | str, exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        return ConfigError(
            f"{path}: unknown key {loc}", hint="check the spelling against config.example.toml"
        )
    if kind == "missing":
        return ConfigError(f"{path}: {loc} is required", hint="add it (see config.example.toml)")
    # ``input`` is deliberately not shown: it may be a secret.
    msg = first["msg"].replace("Value error, ", "")
    hint = None if msg.endswith(")") else "fix the value (see config.example.toml)"
    return ConfigError(f"{path}: {loc}: {msg}", hint=hint)


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    """Validate a decoded TOML document."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _format_error(path or "hub.toml", exc) from None
    except ConfigError as exc:
        raise ConfigError(f"{path or 'hub.toml'}: {exc.message}", hint=exc.hint) from None
    config._path = path
    config._warnings = _literal_secret_warnings(config, path)
    return config


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate ``hub.toml`` (``HUB_CONFIG`` or ``./hub.toml`` by default)."""
    path = Path(path or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG).expanduser()
    if not path.exists():
        raise ConfigError(
            f"config file {path} not found", hint="run 'hub init' to write one, or pass --config"
        )
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}", hint="fix the syntax at that line"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}", hint="check the path and permissions"
        ) from None
    return parse_config(data, path.resolve())


def _literal_secret_warnings(config: Config, path: Path | None) -> list[str]:
    warnings = []
    for name, conn in config.connections.items():
        for key, value in conn.settings.items():
            if (
                isinstance(value, str)
                and value
                and any(h in key.lower() for h in SECRET_KEY_HINTS)
                and not value.startswith(SECRET_PREFIXES)
            ):
                warnings.append(
                    f'connections.{name}.settings.{key} is a literal secret; use "env:VAR" or "file:PATH" instead'
                )
    if path is not None and path.exists() and warnings:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(
                f"{path} holds secrets and is readable by other users; run chmod 600 {path}"
            )
    return warnings
