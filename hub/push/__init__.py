"""Push-back: writing health fields and the task outbox to CRMs, only what changed.

A pusher is a ``Pusher`` subclass registered with ``register_pushers`` (built-in ones live in
``plugins/``). ``run_push(store, config)`` builds each pusher named in
``[push] pushers`` with a ``PushContext``, its ``[push.<pusher>]`` settings and the HTTP
client of its connection, and drives it: completions read back, health fields, tasks.

The package, one job per module:

* ``settings``: ``[push]`` and each pusher's table (``validate_config``);
* ``pusher``: the ``Pusher`` contract;
* ``context``: ``PushContext``, what every pusher gets (health values, links, push log,
  outbox, dry-run guard);
* ``results``: ``PushResult`` with its ``PropertyChange`` and ``TaskAction`` rows;
* ``engine``: ``run_push``: clients, completions, task selection within the caps;
* ``history``: each run's rows (values replaced, tasks created) for ``hub push history``;
* ``undo``: ``revert_run`` and ``uninstall`` (``hub push revert``, ``hub uninstall``).

A dry run (``dry_run=True``) may read from the CRM but must not write to it or to the
database: pushers fill ``PushResult`` with planned changes (old → new) and tasks to create,
and ``PushContext.write_guard()`` refuses a write outright.
"""

from hub.push.context import HEALTH_FIELDS, PushContext, ms_iso
from hub.push.engine import caps_text, record_completions, run_push, select_tasks
from hub.push.pusher import Pusher
from hub.push.results import PropertyChange, PushResult, SchemaItem, TaskAction
from hub.push.settings import (
    PusherSettings,
    PushSettings,
    push_settings,
    pusher_classes,
    pusher_settings,
    validate_config,
)

__all__ = [
    "HEALTH_FIELDS",
    "PropertyChange",
    "PushContext",
    "PushResult",
    "PushSettings",
    "SchemaItem",
    "Pusher",
    "PusherSettings",
    "TaskAction",
    "caps_text",
    "ms_iso",
    "push_settings",
    "pusher_classes",
    "pusher_settings",
    "record_completions",
    "run_push",
    "select_tasks",
    "validate_config",
]
