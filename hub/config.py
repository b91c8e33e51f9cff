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

import importlib
import os
import stat
import sys
import types
import typing
from collections.abc import Callable
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
    timezone: str = "UTC"
    """The time zone of cron-line schedules ("0 6 * * *" at 06:00 there), e.g. "Europe/Berlin"."""

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as UTC or Europe/Berlin)"
            ) from None
        return value


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


def validate_section(
    model: type[BaseModel],
    data: Any,
    where: str,
    origin: Any = None,
    *,
    tolerate: Callable[[dict[str, Any]], bool] | None = None,
) -> Any:
    """Validate ``data`` against ``model``; the first error becomes one ``ConfigError`` line
    naming ``origin`` (the file), the key path under ``where`` and the fix, never the value.

    Every part of the hub that validates a piece of hub.toml (connections, health, playbooks,
    push, mappings) goes through here, so the errors read alike. An unknown key is reported
    before a missing one (``api_kee`` is a typo of ``api_key``, not a missing ``api_key``).
    ``tolerate(error)`` may drop errors that are not the config's fault (a secret reference
    standing in for a typed value); the result is then None.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not (tolerate and tolerate(e))]
        if not errors:
            return None
        raise config_error(model, errors, where, origin) from None


def config_error(
    model: type[BaseModel] | None, errors: list[Any], where: str = "", origin: Any = None
) -> ConfigError:
    """One ``ConfigError`` line for a list of pydantic errors (the most useful one first)."""
    errors = sorted(errors, key=lambda e: 0 if e["type"] == "extra_forbidden" else 1)
    first = errors[0]
    loc_parts = [str(x) for x in first["loc"]]
    loc = ".".join([p for p in [where, *loc_parts] if p])
    prefix = f"{origin}: " if origin else ""
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, first["loc"][:-1]) if model else []
        listing = f"allowed here: {', '.join(allowed)}; " if allowed else ""
        return ConfigError(
            f"{prefix}unknown key {loc}",
            hint=f"check the spelling; {listing}run `hub init --example` to see every option",
        )
    if first["type"] == "missing":
        return ConfigError(
            f"{prefix}{loc} is required",
            hint="add it; run `hub init --example` to see every option",
        )
    # ``input`` is deliberately not shown: it may be a secret.
    msg = first["msg"].replace("Value error, ", "")
    hint = (
        None if msg.endswith(")") else "fix the value; run `hub init --example` to see every option"
    )
    return ConfigError(f"{prefix}{loc}: {msg}", hint=hint)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a model accepts at ``loc`` (walking nested models and dicts of models)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return []
            current = field_info.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
        # Optional[Model] and Model | None
        args = [a for a in typing.get_args(current) if a is not type(None)]
        if typing.get_origin(current) in (typing.Union, types.UnionType) and len(args) == 1:
            current = args[0]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    """Validate a decoded TOML document."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise config_error(Config, exc.errors(), "", path or "hub.toml") from None
    except ConfigError as exc:
        raise ConfigError(f"{path or 'hub.toml'}: {exc.message}", hint=exc.hint) from None
    config._path = path
    config._warnings = _literal_secret_warnings(config, path)
    return config


def load_config(path: str | Path | None = None, *, validate: bool = True) -> Config:
    """Read ``hub.toml`` (``HUB_CONFIG`` or ``./hub.toml`` by default) and validate every
    section, including those owned by plugins and by the steps (``validate_config``)."""
    path = Path(path or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG).expanduser()
    try:
        if not path.exists():
            raise ConfigError(
                f"config file {path} not found",
                hint="run 'hub init' to write one, or pass --config",
            )
        if path.is_dir():
            raise ConfigError(
                f"{path} is a folder, not a config file", hint="pass the hub.toml path"
            )
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}", hint="fix the syntax at that line"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (bad byte at offset {exc.start})",
            hint="save it as UTF-8",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}",
            hint="check the path, and that the user hub runs as can read the file and its folder",
        ) from None
    if not data:
        raise ConfigError(
            f"{path} is empty",
            hint="add a [connections.<name>] table; 'hub init --example' prints every option",
        )
    config = parse_config(data, path.resolve())
    if validate:
        validate_config(config)
    return config


# Sections owned by other packages: each exports ``validate_config(config) -> None``, raising
# ``ConfigError`` for the first problem. Called by dotted path so the config module imports
# none of them at load time.
SECTION_VALIDATORS: dict[str, str] = {
    "timeline": "hub.timeline",
    "health": "hub.health",
    "playbooks": "hub.playbooks",
    "push": "hub.push",
    "portfolio": "hub.portfolio",
}


def validate_config(config: Config) -> None:
    """Validate what the ``Config`` model cannot know alone: each connection's settings
    against its connector's ``Settings``, and the sections owned by other packages
    (``[timeline.*]``, ``[health]``, ``[playbooks]``, ``[push]``). ``[hub]``, ``[identity]``
    and ``[scheduler]`` are validated by ``parse_config`` already.
    """
    from hub.registry import get_registry

    registry = get_registry()
    origin = config.path or "hub.toml"
    for name, conn in config.connections.items():
        if conn.connector not in registry.connectors:
            known = ", ".join(sorted(registry.connectors)) or "none"
            raise ConfigError(
                f"{origin}: connections.{name}.connector names {conn.connector!r}, which is not installed",
                hint=f"installed connectors: {known}; see 'hub plugins'",
            )
        settings = conn.settings

        def _is_reference(error: dict[str, Any], settings: dict[str, Any] = settings) -> bool:
            # "env:PORT" stands for a value checked when it is resolved, not now.
            key = error["loc"][0] if error["loc"] else None
            value = settings.get(key) if isinstance(key, str) else None
            return (
                error["type"] != "extra_forbidden"
                and isinstance(value, str)
                and value.startswith(SECRET_PREFIXES)
            )

        validate_section(
            registry.connectors[conn.connector].Settings,
            settings,
            f"connections.{name}.settings",
            origin,
            tolerate=_is_reference,
        )
    for module_name in SECTION_VALIDATORS.values():
        importlib.import_module(module_name).validate_config(config)


def missing_section_validators() -> list[str]:
    """Owner packages that do not export ``validate_config`` yet (reported by the tests)."""
    return [
        module
        for module in SECTION_VALIDATORS.values()
        if not hasattr(importlib.import_module(module), "validate_config")
    ]


def _literal_secret_warnings(config: Config, path: Path | None) -> list[str]:
    """Warnings about how secrets are kept: literal values in hub.toml, and secret files
    (``file:`` references, ``[hub] secrets_file``, hub.toml itself when it holds secrets)
    that other users can read."""
    warnings = []
    secret_files: list[tuple[str, Path]] = []
    base = path.parent if path is not None else Path.cwd()
    for name, conn in config.connections.items():
        for key, value in conn.settings.items():
            if not isinstance(value, str) or not value:
                continue
            if value.startswith("file:"):
                ref = Path(value[5:]).expanduser()
                secret_files.append((f"connections.{name}.settings.{key}", base / ref))
            elif any(h in key.lower() for h in SECRET_KEY_HINTS) and not value.startswith(
                SECRET_PREFIXES
            ):
                warnings.append(
                    f'connections.{name}.settings.{key} is a literal secret; use "env:VAR" or "file:PATH" instead'
                )
    hooks = config.webhooks.get("secrets") if isinstance(config.webhooks, dict) else None
    for name, value in (hooks or {}).items() if isinstance(hooks, dict) else ():
        if not isinstance(value, str) or not value:
            continue
        if value.startswith("file:"):
            secret_files.append((f"webhooks.secrets.{name}", base / Path(value[5:]).expanduser()))
        elif not value.startswith(SECRET_PREFIXES):
            warnings.append(
                f'webhooks.secrets.{name} is a literal secret; use "env:VAR" or "file:PATH" instead'
            )
    if config.hub.secrets_file:
        secret_files.append(
            ("[hub] secrets_file", base / Path(config.hub.secrets_file).expanduser())
        )
    if path is not None and path.exists() and warnings:
        secret_files.append(("it holds secrets and", path))
    for what, file in secret_files:
        try:
            mode = file.stat().st_mode
        except OSError:
            continue  # a missing file is reported when the secret is resolved
        if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
            if file == path:
                warnings.append(
                    f"{file} holds secrets and is readable by other users; run chmod 600 {file}"
                )
            else:
                warnings.append(
                    f"secret file {file} ({what}) is readable by other users; run chmod 600 {file}"
                )
    return warnings
