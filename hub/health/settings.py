"""``[health]`` of hub.toml: the section model, segments, and the settings resolved against
the registered measures and models.

``validate_config(config)`` validates the whole section (measure parameters, every model
table, segments) with the usual one-line ``ConfigError`` naming the key; ``load_config`` and
``hub check --offline`` call it, so a typo fails at load, not at ``hub health``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, field_validator

from hub.config import validate_section
from hub.health.measures import Account, Measure
from hub.health.models import HealthModel, ModelContext
from hub.health.rounding import DEFAULT_BANDS, check_bands
from hub.health.rules import _Strict

ENGINE_VERSION = "2"  # bump when a change to the engine must recompute every score
DEFAULT_CHURNED_STAGES = ("former_customer", "churned")


def _stage_key(stage: str) -> str:
    """Stages compare without case, spaces, dashes or underscores ("Former customer")."""
    return "".join(ch for ch in stage.casefold() if ch.isalnum())


class SegmentConfig(_Strict):
    """``[[health.segments]]``: accounts matching every given rule use ``model``."""

    name: str
    model: str
    mrr_at_least: float | None = None
    mrr_below: float | None = None
    plan: list[str] | None = None
    lifecycle_stage: list[str] | None = None

    @field_validator("plan", "lifecycle_stage", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def matches(self, account: Account) -> bool:
        mrr = account.mrr
        if self.mrr_at_least is not None and (mrr is None or mrr < self.mrr_at_least):
            return False
        if self.mrr_below is not None and (mrr is None or mrr >= self.mrr_below):
            return False
        if self.plan is not None and (
            not account.plan or account.plan.casefold() not in {p.casefold() for p in self.plan}
        ):
            return False
        return not (
            self.lifecycle_stage is not None
            and (
                not account.lifecycle_stage
                or account.lifecycle_stage.casefold()
                not in {s.casefold() for s in self.lifecycle_stage}
            )
        )


class HealthSection(_Strict):
    """``[health]`` of hub.toml (measure and model tables are validated by their plugins)."""

    model: str = "default"
    bands: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_BANDS))
    drivers: int = Field(3, ge=1, le=10)
    workers: int = Field(0, ge=0, le=16)
    measures: dict[str, dict[str, Any]] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    segments: list[SegmentConfig] = Field(default_factory=list)
    min_coverage: float = Field(0.5, ge=0, le=1)
    """A score made from less than this share of its model's weight is flagged."""
    churned_stages: list[str] = Field(default_factory=lambda: list(DEFAULT_CHURNED_STAGES))
    """CRM lifecycle stages that mean "former customer": such an account is churned."""

    @field_validator("churned_stages", mode="before")
    @classmethod
    def _stages(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def is_churned_stage(self, stage: str | None) -> bool:
        return bool(stage) and _stage_key(stage) in {_stage_key(s) for s in self.churned_stages}

    @field_validator("bands")
    @classmethod
    def _bands(cls, value: dict[str, float]) -> dict[str, float]:
        check_bands(value, 0, 100, "(scores are 0-100)")
        return value


def _validate(cls: type[BaseModel], data: Any, path: str, origin: str) -> Any:
    """Validate a piece of ``[health]`` (one-line errors naming the key path)."""
    return validate_section(cls, data, path, origin)


@dataclass
class ResolvedModel:
    """A configured model with its measures' parameters resolved."""

    name: str
    model: HealthModel
    params: dict[str, tuple[Any, str]]  # measure -> (params, stream key)
    specs: list[tuple[tuple[str, ...], int]]


class HealthSettings:
    """``[health]`` validated and resolved against the registered measures and models."""

    def __init__(self, config: Any = None):
        from hub.registry import get_registry

        raw = dict(getattr(config, "health", None) or {}) if config is not None else {}
        path = getattr(config, "path", None) if config is not None else None
        self.origin = str(path) if path else "hub.toml"
        self.raw = raw
        self.path = str(path) if path else None
        registry = get_registry()
        self.measures: dict[str, Measure] = {}
        model_types: dict[str, type[HealthModel]] = {}
        for name, obj in sorted(registry.health_models.items()):
            if isinstance(obj, type) and issubclass(obj, Measure):
                self.measures[name] = obj()
            elif isinstance(obj, type) and issubclass(obj, HealthModel):
                model_types[name] = obj
        self.section: HealthSection = _validate(HealthSection, raw, "health", self.origin)
        self.bands = dict(self.section.bands)
        # Stages seen per run are few: each is judged once.
        self.churned_stage: dict[str, bool] = {}
        ctx = ModelContext(self.origin, self.measures, self.bands)

        global_params: dict[str, dict[str, Any]] = {}
        for name, params in self.section.measures.items():
            if name not in self.measures:
                raise ctx.fail(
                    f"health.measures.{name}",
                    f"unknown measure {name!r}",
                    hint=f"known: {', '.join(self.measures) or 'none (is plugins.health_models installed?)'}",
                )
            _validate(self.measures[name].Params, params, f"health.measures.{name}", self.origin)
            global_params[name] = dict(params)

        models_raw = dict(self.section.models)
        if "default" not in models_raw:
            models_raw["default"] = default_model_config(self.measures)
        self.models: dict[str, ResolvedModel] = {}
        for model_name, table in models_raw.items():
            where = f"health.models.{model_name}"
            if not isinstance(table, dict):
                raise ctx.fail(where, "must be a table", hint=f"write [{where}] with type = …")
            kind = table.get("type", "weighted")
            table = {"type": kind, **table}
            if kind not in model_types:
                raise ctx.fail(
                    f"{where}.type",
                    f"unknown model type {kind!r}",
                    hint=f"known: {', '.join(sorted(model_types)) or 'none'}",
                )
            cls = model_types[kind]
            settings = _validate(cls.Settings, table, where, self.origin)
            model = cls(model_name, settings, ctx)
            params: dict[str, tuple[Any, str]] = {}
            for measure_name in model.measures_needed():
                if measure_name not in self.measures:
                    raise ctx.fail(where, f"unknown measure {measure_name!r}")
                override = settings.measures.get(measure_name, {})
                merged = {**global_params.get(measure_name, {}), **override}
                value = _validate(
                    self.measures[measure_name].Params,
                    merged,
                    f"{where}.measures.{measure_name}"
                    if override
                    else f"health.measures.{measure_name}",
                    self.origin,
                )
                key = (
                    measure_name + ":" + json.dumps(value.model_dump(), sort_keys=True, default=str)
                )
                params[measure_name] = (value, key)
            for measure_name in settings.measures:
                if measure_name not in self.measures:
                    raise ctx.fail(
                        f"{where}.measures.{measure_name}",
                        f"unknown measure {measure_name!r}",
                        hint=f"known: {', '.join(self.measures)}",
                    )
            specs = sorted({c.spec for c in model.conditions() if c.spec is not None})
            self.models[model_name] = ResolvedModel(model_name, model, params, specs)

        self.segments = list(self.section.segments)
        names = set()
        for i, segment in enumerate(self.segments):
            if segment.model not in self.models:
                raise ctx.fail(
                    f"health.segments.{i}.model",
                    f"unknown model {segment.model!r}",
                    hint=f"models: {', '.join(sorted(self.models))}",
                )
            if segment.name in names or segment.name == "default":
                raise ctx.fail(
                    f"health.segments.{i}.name",
                    f"segment name {segment.name!r} is used twice (or is the reserved 'default')",
                    hint="give every segment its own name",
                )
            names.add(segment.name)
        self._check_segment_tables(ctx, names)
        if self.section.model not in self.models:
            raise ctx.fail(
                "health.model",
                f"unknown model {self.section.model!r}",
                hint=f"models: {', '.join(sorted(self.models))}",
            )
        self.default_model = self.models[self.section.model]
        # Only models some account can get need their measures aggregated.
        self.used = [
            self.models[name]
            for name in dict.fromkeys([self.section.model, *(s.model for s in self.segments)])
        ]
        self.fingerprint = hashlib.blake2b(
            json.dumps(
                [ENGINE_VERSION, raw, sorted(registry.health_models)], sort_keys=True, default=str
            ).encode(),
            digest_size=12,
        ).hexdigest()

    def _check_segment_tables(self, ctx: ModelContext, names: set[str]) -> None:
        """A per-segment parameter table may only name segments (a typo would never apply)."""
        for resolved in self.models.values():
            for measure_name, (params, _) in resolved.params.items():
                for field in type(params).by_segment:
                    value = getattr(params, field)
                    unknown = (
                        sorted(set(value) - names - {"default"}) if isinstance(value, dict) else []
                    )
                    if unknown:
                        raise ctx.fail(
                            f"health.measures.{measure_name}.{field}",
                            f"{unknown[0]!r} is not a segment",
                            hint="use default or a [[health.segments]] name: "
                            + ", ".join(["default", *sorted(names)]),
                        )

    def choose(self, account: Account) -> tuple[str, ResolvedModel]:
        """The account's segment and model: the first matching segment, else the default."""
        for segment in self.segments:
            if segment.matches(account):
                return segment.name, self.models[segment.model]
        return "default", self.default_model


def default_model_config(measures: dict[str, Measure]) -> dict[str, Any]:
    """The built-in ``default`` model: weighted, each measure at its ``default_weight``."""
    weights = {n: m.default_weight for n, m in measures.items() if m.default_weight > 0}
    caps = [cap for n, m in measures.items() if m.default_weight > 0 for cap in m.default_caps]
    return {
        "type": "weighted",
        "description": "built-in default: every measure at its default weight",
        "weights": weights,
        "caps": caps,
    }


def load_settings(config: Any = None) -> HealthSettings:
    """Validate ``[health]`` of ``config`` (None → defaults) against the registered plugins."""
    return HealthSettings(config)


def validate_config(config: Any) -> None:
    """Validate ``[health]`` of ``config`` fully against the registered measures and models;
    raises the one-line ``ConfigError`` naming the key (nothing when the section is valid)."""
    HealthSettings(config)


__all__ = [
    "ENGINE_VERSION",
    "HealthSection",
    "HealthSettings",
    "ResolvedModel",
    "SegmentConfig",
    "default_model_config",
    "load_settings",
    "validate_config",
]
