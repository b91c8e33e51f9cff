"""Playbooks: rules on health scores and timeline events that open follow-up tasks.

A playbook is a ``Playbook`` subclass registered with ``register_playbooks``. It looks at the
hub's tables through a ``PlaybookContext`` and yields ``Trigger`` objects ("account X needs a
follow-up because Y, see Z"); the engine turns triggers into rows of the ``tasks`` table, the
*outbox* that pushers (``hub.push``) deliver to the CRM::

    class SlowTickets(Playbook):
        name = "slow_tickets"
        title = "Tickets take too long"
        options = {"hours": 48, "lookback_days": 14}
        subject = "Slow tickets at {account_name}"
        body = "Median resolution {median} h (target {hours} h)." + STANDARD_BODY_TAIL
        placeholders = ("median", "hours")

        def evaluate(self, ctx):
            for account_id, events in ctx.events(["ticket_solved"], days=self.opt("lookback_days")).items():
                ...
                yield Trigger(account_id, reason="slow_tickets", detail="…", evidence=events,
                              values={"median": 52, "hours": self.opt("hours")})

Every playbook is configured in ``hub.toml`` ``[playbooks.<name>]`` (``enabled``,
``due_in_days``, ``priority``, ``snooze_days``, ``subject``, ``body`` and its own thresholds)
and can be switched off. Templates use ``{placeholders}``; an unknown placeholder is a
config error at load time, not a broken task at run time.

The package, one job per module:

* ``rules``: ``Playbook``, ``Trigger``, ``PlaybookContext`` (what a plugin author uses);
* ``settings``: ``[playbooks]`` validation (``validate_config``) and building the playbooks;
* ``outbox``: the ``tasks`` table's states, dedupe and the one snooze rule;
* ``render``: a trigger in words for a CSM (subject, body, due date, evidence);
* ``engine``: ``run_playbooks``, with the task discipline (baseline, churn, evidence, one
  task per account and run).

Completions are read back by the pusher that created the task (``hub.push``), not here.
"""

from hub.playbooks.engine import PlaybookResult, evaluate_all, run_playbooks
from hub.playbooks.outbox import (
    ACTIVE_STATUSES,
    Outbox,
    is_snoozed,
    iter_playbook_stats,
    task_id_for,
    task_keys,
)
from hub.playbooks.render import humanize, merge_rows, render_task
from hub.playbooks.rules import (
    COMMON_OPTIONS,
    COMMON_PLACEHOLDERS,
    PRIORITIES,
    STANDARD_BODY_TAIL,
    Playbook,
    PlaybookContext,
    Trigger,
)
from hub.playbooks.settings import (
    PlaybookSetup,
    PlaybooksSection,
    load_playbooks,
    snooze_days_for,
    validate_config,
)
from hub.text import plural

__all__ = [
    "ACTIVE_STATUSES",
    "COMMON_OPTIONS",
    "COMMON_PLACEHOLDERS",
    "PRIORITIES",
    "STANDARD_BODY_TAIL",
    "Outbox",
    "Playbook",
    "PlaybookContext",
    "PlaybookResult",
    "PlaybookSetup",
    "PlaybooksSection",
    "Trigger",
    "evaluate_all",
    "humanize",
    "is_snoozed",
    "iter_playbook_stats",
    "load_playbooks",
    "merge_rows",
    "plural",
    "render_task",
    "run_playbooks",
    "snooze_days_for",
    "task_id_for",
    "task_keys",
    "validate_config",
]
