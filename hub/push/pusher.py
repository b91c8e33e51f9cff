"""The pusher contract: what a write-back plugin implements, and nothing vendor-specific.

A pusher is a ``Pusher`` subclass registered with ``register_pushers``. The push core
(``hub.push.engine``) builds it once per push with

* ``ctx``: a ``PushContext`` (health values, identity links, push log, task outbox, result,
  dry-run guard, ``now``);
* ``settings``: its ``[push.<name>]`` table validated by its ``Settings`` model (a
  ``PusherSettings`` subclass, ``extra="forbid"``; ``connection`` is always there);
* ``client``: an ``hub.http.HttpClient`` for its connection, built by the host from the
  connection's own connector, so it shares that connection's auth, secrets scrubbing and
  rate budget with ``hub sync`` (None when ``connector`` is None);

then calls, in this order and only for what ``[push]`` switches on:

1. ``read_completions(tasks)`` with the outbox tasks this pusher delivered that are still
   open in the CRM; it returns ``{task id: completed_at or None}`` for those completed (or
   deleted: None) and the host completes and snoozes them in the outbox;
2. ``push_properties(items)`` with ``PushContext.health_values()``;
3. ``push_tasks(reconcile, create)``: rows a killed or failed push left ``pushing`` (look
   for what they created before creating again) and the ``open`` rows this push may create
   (already capped per run and per owner). Claim them with ``ctx.outbox.claim_many`` (it
   returns only the rows this call claimed), create, ``record_remote``, ``mark_pushed``.

For ``hub push revert RUN`` and ``hub uninstall <pusher>`` (``hub.push.undo``) a pusher
also implements the undo hooks (see "undo and uninstall" below). The host decides what to
restore and what to skip, records the run in the push history and keeps the push log true;
the pusher only reads and writes its CRM:

* ``read_values(object_type, ids, properties)`` and ``write_values(object_type, values)``
  (with ``same_value(property, a, b)`` for comparing as the CRM stores values): a revert
  restores a value only where the CRM still holds what the run wrote;
* ``task_states(remote_ids)``, ``archive_tasks(remote_ids)`` and ``marked_tasks()``: only for
  a pusher with ``handles_tasks``; a revert archives the run's tasks that are still open,
  ``hub uninstall --tasks`` the open tasks carrying the hub's marker;
* ``installed()`` and ``remove_installed(items)``: what the hub created in the CRM (its own
  fields and their container, never a field the config mapped the hub onto) and removing it
  (archiving where the CRM can restore); the next ``hub push`` installs again.

A pusher that does not implement them raises ``NotImplementedError`` (the base class does),
and the host says that pusher cannot revert or uninstall. Every undo hook may be called in
a dry run: the read hooks must not write, and the host never calls the writing ones then.

Before anything is written, ``hub check`` and ``hub push --dry-run`` call
``check_access()`` (reads only): each problem it returns names a permission the configured
push needs and the connection lacks (a missing scope) and how to grant it.

Writes go through ``write()``: it refuses in a dry run, counts the write, and sends the
request as non-idempotent, so the HTTP client never resends it blindly: an answer lost after
sending raises ``AmbiguousWriteError`` and the pusher reconciles (searches for what it wrote)
before writing again. Reads go through ``read()`` (``idempotent=True``, retried freely, POST
searches included).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import httpx

from hub.errors import PushError
from hub.http import HttpClient
from hub.push.context import PushContext
from hub.push.results import SchemaItem
from hub.push.settings import PusherSettings


class Pusher:
    """Base class of a write-back target plugin (``register_pushers``); see the module doc."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    connector: ClassVar[str | None] = None
    """The connector (by registered name) of the connection this pusher writes through."""
    Settings: ClassVar[type[PusherSettings]] = PusherSettings
    """The model of ``[push.<name>]``."""
    record_type: ClassVar[str] = "records"
    """The kind of CRM record ``object_id`` names (as in ``PropertyChange.object_type``, e.g.
    ``companies``): the push detail labels a task's record with it."""
    handles_tasks: ClassVar[bool] = False
    """Whether it delivers the task outbox (at most one configured pusher may)."""
    default: ClassVar[bool] = False
    """Whether it runs when ``[push] pushers`` is not set."""
    removal: ClassVar[str] = "archive"
    """How ``remove_installed`` removes the hub's fields: ``"archive"`` (the CRM can restore
    them) or ``"delete"`` (their values go with them); ``hub uninstall`` says which."""

    def __init__(
        self,
        ctx: PushContext,
        settings: PusherSettings | None = None,
        client: HttpClient | None = None,
    ):
        self.ctx = ctx
        self.settings = settings if settings is not None else self.Settings()
        self.client = client

    def __repr__(self) -> str:
        return f"<Pusher {self.name}>"

    @property
    def connection(self) -> str:
        """The connection it writes through: ``[push.<name>] connection``, else its name."""
        return self.settings.connection or self.name

    @property
    def target(self) -> str:
        """The push log's namespace: one per pusher and connection."""
        return f"{self.name}:{self.connection}"

    # HTTP ---------------------------------------------------------------------------------

    def read(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request that changes nothing (GET, or a POST search/batch read): retried freely."""
        return self._client().request(method, path, idempotent=True, **kwargs)

    def write(
        self, method: str, path: str, *, repeatable: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """A request that changes the CRM: never in a dry run, never resent blindly.

        ``repeatable=True`` for a write whose repetition changes nothing (setting values,
        adding an association): the client may then resend it after a lost answer.
        """
        client = self._client()
        self.ctx.write_guard(f"{method} {path}")
        self.ctx.result.writes += 1
        return client.request(method, path, idempotent=repeatable, **kwargs)

    def _client(self) -> HttpClient:
        if self.client is None:
            raise PushError(
                f"internal error: pusher {self.name} sends requests but declares no connector"
            )
        return self.client

    # the steps the host calls ---------------------------------------------------------------

    def object_id(self, account: dict[str, Any]) -> str | None:
        """This CRM's record id for an account (None: the account is not in this CRM)."""
        return None

    def read_completions(self, tasks: list[dict[str, Any]]) -> dict[str, dt.datetime | None]:
        """Which of these delivered tasks are done in the CRM: task id → completed at."""
        return {}

    def push_properties(self, items: dict[str, dict[str, Any]]) -> None:
        """Write the health fields that changed (``items`` from ``ctx.health_values()``)."""

    def push_tasks(self, reconcile: list[dict[str, Any]], create: list[dict[str, Any]]) -> None:
        """Reconcile rows left ``pushing``, then create ``create`` (exactly once each)."""

    def check_access(self) -> list[str]:
        """Problems that would stop this push (missing scopes…), each a line naming the fix;
        [] when the connection may do everything the configured push does (reads only)."""
        return []

    # -- undo and uninstall (``hub push revert``, ``hub uninstall``) -------------------------

    def read_values(
        self, object_type: str, ids: list[str], properties: list[str]
    ) -> dict[str, dict[str, str]]:
        """Current CRM values (reads only): record id → {property: text, "" when unset}.

        A record the CRM no longer has is left out of the answer.
        """
        raise NotImplementedError

    def write_values(self, object_type: str, values: dict[str, dict[str, str]]) -> dict[str, str]:
        """Set values (record id → {property: text}, "" clears) through ``write()``, in as few
        requests as the CRM allows; returns record id → error for the records that failed.

        The host updates the push log for the others; the pusher logs nothing itself.
        """
        raise NotImplementedError

    def same_value(self, prop: str, a: str, b: str) -> bool:
        """Whether two texts are the same value as the CRM stores it (numbers, instants…)."""
        return a == b

    def task_states(self, remote_ids: list[str]) -> dict[str, str]:
        """CRM task id → ``"open"``, ``"completed"`` or ``"gone"`` (deleted) (reads only)."""
        raise NotImplementedError

    def archive_tasks(self, remote_ids: list[str]) -> dict[str, str]:
        """Archive (delete, restorably where the CRM can) these tasks; id → error for failures."""
        raise NotImplementedError

    def marked_tasks(self) -> list[dict[str, str]]:
        """Open CRM tasks that carry the hub's marker, found in the CRM itself (so a rebuilt
        database still finds them): ``[{"remote_id", "task_id", "subject"}]`` (reads only)."""
        raise NotImplementedError

    def installed(self) -> list[SchemaItem]:
        """What the hub created in the CRM and uninstall removes (reads only): its own fields,
        then their containers; never a field ``[push.<pusher>]`` mapped the hub onto."""
        raise NotImplementedError

    def remove_installed(self, items: list[SchemaItem]) -> dict[str, str]:
        """Remove (archive) ``items`` in their order; returns item name → error for failures."""
        raise NotImplementedError
