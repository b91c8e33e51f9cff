"""``[push.scope]``: which accounts a push writes to, for health fields and tasks alike.

An admin limits write-back to part of the book (one segment, some bands or lifecycle
stages, some owners, an MRR range); churned accounts are left out unless
``include_churned = true``. Every list matches case-insensitively; owners match by id, name
or e-mail. An account out of scope gets no health fields and no new task this push (its
open tasks wait in the outbox); tasks already sent are still reconciled and read back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.config import validate_section


class PushScope(BaseModel):
    """``[push.scope]`` of hub.toml; every key unset means "any"."""

    model_config = ConfigDict(extra="forbid")

    segments: list[str] | None = None
    """Health segments to write (e.g. ["enterprise"])."""
    bands: list[str] | None = None
    """Health bands to write (green, yellow, red)."""
    lifecycle_stages: list[str] | None = None
    """CRM lifecycle stages to write (e.g. ["customer"])."""
    owners: list[str] | None = None
    """Account owners to write, by owner id, name or e-mail."""
    min_mrr: float | None = Field(default=None, ge=0)
    """Only accounts with at least this MRR."""
    max_mrr: float | None = Field(default=None, ge=0)
    """Only accounts with at most this MRR."""
    include_churned: bool = False
    """Also write to churned accounts (left out by default)."""

    @model_validator(mode="after")
    def _range(self) -> PushScope:
        if self.min_mrr is not None and self.max_mrr is not None and self.min_mrr > self.max_mrr:
            raise ValueError("min_mrr is above max_mrr")
        return self

    def describe(self) -> str:
        """The scope in words (for the preview and the run note)."""
        parts = []
        for label, values in (
            ("segment", self.segments),
            ("band", self.bands),
            ("lifecycle stage", self.lifecycle_stages),
            ("owner", self.owners),
        ):
            if values is not None:
                parts.append(f"{label} {' or '.join(values) or '(none)'}")
        if self.min_mrr is not None:
            parts.append(f"MRR ≥ {self.min_mrr:g}")
        if self.max_mrr is not None:
            parts.append(f"MRR ≤ {self.max_mrr:g}")
        parts.append("churned included" if self.include_churned else "churned excluded")
        return ", ".join(parts)

    def admits(self, account: dict[str, Any], health: dict[str, Any] | None) -> bool:
        """Whether the account (``accounts`` row, its ``health_scores`` row) is in scope."""
        health = health or {}
        if not self.include_churned and (
            health.get("churned") or str(health.get("band") or "").lower() == "churned"
        ):
            return False
        checks = (
            (self.segments, [health.get("segment")]),
            (self.bands, [health.get("band")]),
            (self.lifecycle_stages, [account.get("lifecycle_stage")]),
            (self.owners, [account.get(k) for k in ("owner_id", "owner_name", "owner_email")]),
        )
        for wanted, have in checks:
            if wanted is None:
                continue
            allowed = {w.strip().lower() for w in wanted}
            if not any(str(h).strip().lower() in allowed for h in have if h not in (None, "")):
                return False
        mrr = account.get("mrr")
        if self.min_mrr is not None and (mrr is None or float(mrr) < self.min_mrr):
            return False
        return not (self.max_mrr is not None and mrr is not None and float(mrr) > self.max_mrr)


def scope_settings(config: Any) -> PushScope:
    """Validate ``[push.scope]``; errors are one-line ``ConfigError``s naming the key."""
    from hub.errors import ConfigError

    raw = (getattr(config, "push", None) or {}).get("scope") or {}
    origin = getattr(config, "path", None) or "hub.toml"
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: push.scope must be a table", hint="write it as [push.scope]")
    return validate_section(PushScope, raw, "push.scope", origin)


def scoped_accounts(ctx: Any, *, churn_followup: bool = False) -> set[str]:
    """Ids of the accounts this push may write to (cached on the context).

    ``churn_followup``: the accounts whose churn follow-up task may go out. Churned accounts
    are left out of the scope by default, but the churn follow-up is the one task a churned
    account is meant to get, so for it they count as in scope (the other filters still
    apply)."""
    key = "_scoped_churn" if churn_followup else "_scoped_accounts"
    cached = getattr(ctx, key, None)
    if cached is not None:
        return cached
    scope = scope_settings(ctx.config)
    if churn_followup:
        scope = scope.model_copy(update={"include_churned": True})
    health = {
        row["account_id"]: dict(row)
        for row in ctx.store.db.query(
            "SELECT account_id, band, segment, churned FROM health_scores"
        )
    }
    admitted = {
        account_id
        for account_id, account in ctx.accounts().items()
        if scope.admits(account, health.get(account_id))
    }
    setattr(ctx, key, admitted)
    return admitted
