"""The ``hub serve`` application: options, safety checks, templates, the ASGI app itself.

Safety is decided here, once, for every route:

- the database is opened read-only for pages (one connection per worker thread);
- a request whose ``Host`` is not loopback is refused when the app is bound to loopback
  (DNS rebinding), and every request needs the token when one is set (required beyond
  loopback: ``check_bind``); the token comes as ``Authorization: Bearer``, or once as
  ``?token=`` which sets an HttpOnly cookie;
- actions are POST only, refused unless the app was started with ``--allow-actions``, and
  need the page's CSRF token (and a same-origin ``Origin`` when the browser sends one);
- every error is a page without a traceback; a missing or malformed id is a 404 page;
- templates autoescape, and the Content Security Policy allows no script at all.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from hub import __version__, text
from hub.errors import ConfigError
from hub.store.web import ReadOnlyStore
from hub.web import charts

log = logging.getLogger("hub.web")

HERE = Path(__file__).resolve().parent
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
MAX_FORM_BYTES = 64 * 1024
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def is_loopback(host: str) -> bool:
    """True for localhost and any address in 127.0.0.0/8 or ::1."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, *, webhooks_only: bool = False) -> None:
    """Refuse to serve pages beyond loopback without a token (webhook receivers alone
    authenticate each delivery by its signature)."""
    if not is_loopback(host) and not token and not webhooks_only:
        raise ConfigError(
            f"hub serve on {host} would expose the hub beyond this machine without a token",
            hint="pass --token env:HUB_WEB_TOKEN (and set that variable), or bind to 127.0.0.1",
        )


@dataclass
class WebOptions:
    """How the app was started."""

    db_path: str
    config: Any = None  # hub.config.Config, or None when serving a database without hub.toml
    allow_actions: bool = False
    token: str | None = None
    host: str = "127.0.0.1"
    transport: Any = None  # an httpx transport for "run now" and webhooks (tests: the sandbox)
    worker: bool = True  # drain the webhook inbox in this process
    webhooks_only: bool = False  # serve the receivers and no page
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class WebState:
    """Per-app state: options, the template environment, per-thread read-only stores."""

    def __init__(self, options: WebOptions):
        self.options = options
        self._local = threading.local()
        self._stores: list[ReadOnlyStore] = []
        self._lock = threading.Lock()
        self.running: dict[str, str] = {}  # connection -> when its "run now" started
        self._writers = threading.local()
        self.webhooks = None
        self.worker = None
        if options.config is not None and getattr(options.config, "webhooks", None):
            from hub.web.webhooks import validate_config
            from hub.web.worker import WebhookWorker

            self.webhooks = validate_config(options.config)
            if self.webhooks.secrets and options.worker:
                self.worker = WebhookWorker(
                    options.db_path,
                    options.config,
                    transport=options.transport,
                    debounce=self.webhooks.debounce_seconds,
                )
        ReadOnlyStore(options.db_path).close()  # fail at start-up, not on the first page
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(
            version=__version__,
            band_colour=charts.band_colour,
            allow_actions=options.allow_actions,
            csrf_token=options.csrf,
        )
        self.templates.filters.update(
            money=_money, when=_when, signed=_signed, pct=_pct, redact=_redact
        )

    def store(self) -> ReadOnlyStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = ReadOnlyStore(self.options.db_path)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def writer(self) -> Any:
        """A writable store for this thread (the webhook inbox)."""
        from hub.store import Store

        store = getattr(self._writers, "store", None)
        if store is None:
            store = Store(self.options.db_path)
            self._writers.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        with self._lock:
            for store in self._stores:
                store.close()
            self._stores.clear()

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        template = self.templates.get_template(name)
        html = template.render(request=request, path=request.url.path, **context)
        return HTMLResponse(html, status_code=status)


def _redact(value: Any) -> str:
    """Run and error texts pass through the log redactor: defence in depth for secrets."""
    from hub import logs

    return logs.redact(str(value)) if value else ""


def _money(value: Any) -> str:
    return text.money(value, missing="–", whole=True)


def _when(value: Any) -> str:
    if not value:
        return ""
    text = str(value)
    return text[:16].replace("T", " ") if "T" in text else text[:10]


def _signed(value: Any) -> str:
    if value is None:
        return "–"
    return f"{int(value):+d}" if value else "0"


def _pct(value: Any) -> str:
    if value is None:
        return "–"
    return f"{float(value) * 100:.0f}%"


def state_of(request: Request) -> WebState:
    return request.app.state.web


class GuardMiddleware:
    """Host check, token check and security headers for every HTTP request (pure ASGI)."""

    def __init__(self, app: Any, options: WebOptions):
        self.app = app
        self.options = options

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refuse(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        token = request.query_params.get("token")
        if token is not None and self.options.token and request.method == "GET":
            # Trade the token in the address for a cookie, so it leaves the address bar
            # and the history.
            query = "&".join(
                f"{k}={v}" for k, v in request.query_params.multi_items() if k != "token"
            )
            response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
            response.set_cookie(
                "hub_token", token, httponly=True, samesite="strict", secure=False, path="/"
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                for key, value in (
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ):
                    headers.append((key, value))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refuse(self, request: Request) -> Response | None:
        if request.url.path.startswith("/webhooks/"):
            return None  # providers sign their deliveries; they cannot send our token
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        if is_loopback(self.options.host) and host and host not in LOOPBACK_NAMES:
            return HTMLResponse("Unknown host: open the address hub serve printed.", 421)
        expected = self.options.token
        if not expected:
            return None
        given = request.query_params.get("token") or request.cookies.get("hub_token") or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return HTMLResponse(
            "<!doctype html><title>Token required</title><p>This hub needs its access token: "
            "open the address with <code>?token=…</code> once, or send "
            "<code>Authorization: Bearer …</code>.</p>",
            401,
        )


async def read_form(request: Request) -> dict[str, str]:
    """The POSTed form (urlencoded), after the action checks: allowed, CSRF, same origin."""
    state = state_of(request)
    if not state.options.allow_actions:
        raise HTTPException(
            403, "Actions are off: start hub serve with --allow-actions to link, unlink or run."
        )
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise HTTPException(403, "Refused: the form came from another site.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "The form is too large.")
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    given = form.get("csrf_token", "")
    if not hmac.compare_digest(given.encode(), state.options.csrf.encode()):
        raise HTTPException(403, "Refused: the form's CSRF token is missing or stale; reload.")
    return form


def _error_page(request: Request, status: int, message: str) -> Response:
    state: WebState | None = getattr(request.app.state, "web", None)
    titles = {404: "Not found", 403: "Not allowed", 413: "Too large", 405: "Not allowed"}
    title = titles.get(status, "Something went wrong")
    if state is None:  # pragma: no cover - only before start-up finished
        return HTMLResponse(f"<h1>{title}</h1>", status)
    return state.render(request, "error.html", status, title=title, message=message)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else ""
    if exc.status_code == 404 and message in ("", "Not Found"):
        message = "There is no page at this address."
    return _error_page(request, exc.status_code, message)


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("web: %s on %s: %s", type(exc).__name__, request.url.path, exc)
    text = str(exc) if isinstance(exc, ConfigError) else "The page failed; the log says why."
    return _error_page(request, 500, text)


def create_app(options: WebOptions) -> Starlette:
    """The ASGI app for ``options`` (raises ``ConfigError`` if the database cannot be read)."""
    from hub.web import pages, webhooks

    state = WebState(options)
    routes = [*webhooks.routes()]
    if not options.webhooks_only:
        routes += [
            *pages.routes(),
            Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state.worker is not None:
            state.worker.start()
        yield
        state.close()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.web = state
    app.add_middleware(GuardMiddleware, options=options)
    return app


__all__ = [
    "WebOptions",
    "check_bind",
    "create_app",
    "is_loopback",
    "read_form",
    "state_of",
]
