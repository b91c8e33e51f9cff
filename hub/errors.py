"""The one error hierarchy of the hub.

Every error the hub raises on purpose is a ``HubError``; the CLI turns it into one line and
exit code 1, never a traceback (``-v`` shows one)::

    HubError                      anything the hub reports to a person
    ├── ConfigError               hub.toml, CLI arguments, secrets: fix the input
    ├── StartupError              plugins and registry: duplicate names, broken plugins
    ├── APIError                  an upstream API said no
    │   ├── FatalAPIError         401/403/404/400…: retrying will not help
    │   └── RetriableAPIError     429, 5xx, timeouts, resets: retry with backoff
    │       ├── AmbiguousWriteError  a write that may have happened: reconcile, never resend
    │       └── DeferredError     the API asks for a longer wait than a run makes: next run
    ├── SkippableRecordError      one bad record; skip it, report it, carry on
    ├── MappingError              raw rows could not be turned into accounts/events
    ├── PushError                 a write-back to the CRM failed
    ├── Stopped                   Ctrl-C / SIGTERM woke a wait: the run stops cleanly
    └── LockedError               another hub process holds the database lock

Messages name the problem and the fix, and never contain a secret: anything that might
carry one (URLs with query strings, headers) is scrubbed before it gets here.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub reports; ``str()`` is one line fit for a person."""

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigError(HubError):
    """Invalid configuration, secret reference or command-line input."""


class StartupError(HubError):
    """The plugin system or registry could not start (duplicate name, broken plugin)."""


class APIError(HubError):
    """An upstream API answered with an error or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ):
        super().__init__(message, hint=hint)
        self.status = status
        self.retry_after = retry_after
        self.code = code


class FatalAPIError(APIError):
    """An API error that retrying cannot fix (bad credentials, missing scope, bad request)."""


class RetriableAPIError(APIError):
    """A transient API error (429, 5xx, timeout, reset); ``retry_after`` is seconds or None."""


class AmbiguousWriteError(RetriableAPIError):
    """A non-idempotent write was sent and no usable answer came back (timeout after sending,
    reset, 5xx from a proxy): it may or may not have happened. The HTTP client never resends
    such a request blindly; the caller reconciles (looks for what it wrote) before retrying."""


class DeferredError(RetriableAPIError):
    """The API asked to wait (``Retry-After``) longer than the hub waits within one run; the
    stream stops without error and goes on at the next run, with a note saying so."""


class Stopped(HubError):
    """A stop was requested (Ctrl-C, SIGTERM, the scheduler shutting down) during a wait."""


class CursorExpiredError(FatalAPIError):
    """The API no longer accepts a stored cursor or bookmark; the stream must re-read fully."""


class SkippableRecordError(HubError):
    """One record cannot be processed; it is skipped and reported, the run goes on."""


class MappingError(HubError):
    """Raw rows could not be mapped to accounts, links or events."""


class PushError(HubError):
    """A write-back to a CRM failed."""


class LockedError(HubError):
    """Another hub process holds the database lock."""
