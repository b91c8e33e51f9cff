"""Shared machinery of the sandbox fakes: clock, ground truth, faults, routing, HTTP serving.

Every fake API is a ``FakeAPI`` subclass: it declares routes with ``@route``, checks auth
the way the real API does, enforces (optionally) the real rate budgets, and answers with
``httpx.Response`` objects. ``Sandbox`` routes a request to the fake that owns its path, so
the same object serves in-process tests (``transport()``) and loopback HTTP (``serve()``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import random
import re
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from hub.sandbox.faults import Fault, FaultInjector, list_param, whole
from hub.sandbox.memory import FREEZE_FROM

if TYPE_CHECKING:
    from hub.sandbox.serving import SandboxServer

# The product whose customers the world describes, and the competitors BuiltWith may show.
OUR_TECHNOLOGY = "Lumen Widget"
COMPETITORS = ["Intercom", "Drift", "LiveChat", "Tidio"]
FREEMAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com"]
ARCHETYPES = ["healthy", "slipping", "at_risk", "churned", "expanding"]


class Clock:
    """The world's clock: starts at ``start``; moves when told to (``advance``) and, once
    ``run()`` is called (``hub sandbox serve`` does), also follows wall time, so that writes
    get fresh timestamps and incremental clients see each other's changes."""

    def __init__(self, start: dt.datetime):
        self._now = start.astimezone(dt.timezone.utc)
        self._lock = threading.Lock()
        self._wall0: float | None = None  # wall time when the clock started running

    def run(self) -> None:
        """Follow wall time from now on (``advance`` still jumps ahead)."""
        with self._lock:
            if self._wall0 is None:
                self._wall0 = time.time()

    @property
    def running(self) -> bool:
        return self._wall0 is not None

    def now(self) -> dt.datetime:
        with self._lock:
            if self._wall0 is None:
                return self._now
            return self._now + dt.timedelta(seconds=time.time() - self._wall0)

    def ts(self) -> int:
        """Unix seconds."""
        return int(self.now().timestamp())

    def advance(self, seconds: float) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)
        return self.now()


@dataclass
class Company:
    """Ground truth for one customer company, shared by every fake.

    The fakes render it in their own API's shapes; tests compare what the hub concludes
    against these fields (identity links, archetype → band, etc.).
    """

    key: int
    hubspot_id: str
    name: str
    domain: str
    archetype: str  # one of ARCHETYPES
    owner_id: str | None  # HubSpot owner id (the CSM); None = unassigned
    created_at: dt.datetime  # customer since
    plan: str  # starter | growth | enterprise
    seats: int
    unit_amount: int  # cents per seat per month
    renewal_date: dt.date
    stripe_link: str  # explicit | domain | none  (how the Stripe customer points here)
    zendesk_link: str  # external_id | domain | none
    billing_email: str  # the Stripe customer's email (free-mail for some)
    uses_widget: bool  # our widget is on their site
    competitor: str | None  # competitor technology on their site, if any
    merged_into: int | None = None  # key of the company this one was merged into (HubSpot)
    traps: set[str] = field(default_factory=set)  # e.g. {"freemail", "no_payment_method"}

    @property
    def mrr_cents(self) -> int:
        return self.seats * self.unit_amount


class SlidingWindow:
    """Request budget: at most ``limit`` requests in any ``window`` seconds (real time)."""

    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def hit(self) -> tuple[bool, int, float]:
        """Count a request. Returns (allowed, remaining, seconds until a slot frees)."""
        now = time.monotonic()
        with self._lock:
            while self._hits and now - self._hits[0] >= self.window:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return False, 0, self.window - (now - self._hits[0])
            self._hits.append(now)
            return True, self.limit - len(self._hits), 0.0


Handler = Callable[..., httpx.Response]


def route(method: str, pattern: str, name: str | None = None) -> Callable[[Handler], Handler]:
    """Declare a route on a ``FakeAPI`` method: ``@route("GET", r"/v1/customers/(?P<id>[^/]+)")``.

    Named groups are passed to the handler as keyword arguments.
    """

    def mark(func: Handler) -> Handler:
        func._route = (method.upper(), re.compile("^" + pattern + "$"), name or func.__name__)  # type: ignore[attr-defined]
        return func

    return mark


class SimulatedTimeout(Exception):
    """Raised by a fake to make the transport time out (in process) or hang up (over HTTP)."""


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON response with the body already encoded (one write over HTTP)."""
    content = json.dumps(body, separators=(",", ":"), default=str).encode()
    all_headers = {"content-type": "application/json; charset=utf-8"}
    all_headers.update(headers or {})
    return httpx.Response(status, content=content, headers=all_headers)


def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> httpx.Response:
    all_headers = {"content-type": "text/plain; charset=utf-8"}
    all_headers.update(headers or {})
    return httpx.Response(status, content=text.encode(), headers=all_headers)


def request_json(request: httpx.Request) -> Any:
    """Decode a JSON request body; ``None`` when empty."""
    body = request.content
    if not body:
        return None
    return json.loads(body)


def base_url(request: httpx.Request) -> str:
    """Scheme, host and port the client used: next-page links are built from it."""
    url = request.url
    default = {"http": 80, "https": 443}.get(url.scheme)
    port = f":{url.port}" if url.port and url.port != default else ""
    return f"{url.scheme}://{url.host}{port}"


class FakeAPI:
    """Base of one fake API. Subclasses set ``name``, ``prefixes`` and declare routes.

    ``handle()`` counts the request, applies generic faults, checks auth
    (``authenticate``), applies the rate budget (``rate_limit`` when the sandbox enforces
    limits), then dispatches. Unknown routes answer 404 at once in the API's error shape
    (``not_found``).
    """

    name: str = "api"
    prefixes: tuple[str, ...] = ()
    # What a client needs besides the base URL (printed by ``hub sandbox serve``).
    credentials: dict[str, str] = {}
    # Fault kinds this fake answers besides ``FaultInjector.GENERIC`` (``Sandbox.inject``
    # refuses others); None = any (a plugin fake that has not declared its own).
    fault_kinds: frozenset[str] | None = None
    # Fakes whose seeding must come first (a plugin fake may read the built-ins' records).
    seed_after: tuple[str, ...] = ()
    # Background seeding order when no request is waiting: quick fakes first, so that they
    # answer while the slow ones seed.
    seed_rank: int = 5

    def check_fault(self, kind: str, params: dict[str, Any]) -> None:
        """Refuse (``ValueError``) a fault of this fake's own kinds with unusable params."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.world = sandbox.world
        self.faults = FaultInjector()
        # Set once ``seed()`` has run; ``build_sandbox(lazy=True)`` leaves it for later.
        self.seeded = threading.Event()
        self.seeded.set()
        self.requests: Counter[str] = Counter()  # "GET route_name" -> count
        self.status_counts: Counter[int] = Counter()
        self.log: list[tuple[str, str, int]] = []  # (method, path, status), capped
        self._lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        for attr in dir(type(self)):
            func = getattr(type(self), attr, None)
            spec = getattr(func, "_route", None)
            if spec:
                self._routes.append((spec[0], spec[1], spec[2], getattr(self, attr)))

    # -- to override --------------------------------------------------------------------

    def owns(self, path: str) -> bool:
        return any(path.startswith(p) for p in self.prefixes)

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        """Return an error response when the credentials are wrong, else None."""
        return None

    def preroute(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | None:
        """A handler chosen before the declared routes: (route name, handler, kwargs).

        For answers that depend on a path segment's value rather than its shape (e.g. the
        object types a CRM has but the fake does not model); None = use the routes."""
        return None

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        """Return a 429 response when over budget (only called when limits are enforced)."""
        return None

    def error(self, status: int, message: str, **extra: Any) -> httpx.Response:
        """An error in this API's shape."""
        return json_response(status, {"error": message, **extra})

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.error(404, f"Unrecognized request URL ({request.method}: {request.url.path})")

    def seed(self) -> None:
        """Create this API's records for every company in the world."""

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        """Generate activity between ``start`` and ``end`` (called once per simulated day)."""

    # -- machinery ----------------------------------------------------------------------

    def generic_fault(self, request: httpx.Request, fault: Fault) -> httpx.Response | None:
        kind = fault.kind
        if kind == "slow":
            time.sleep(float(fault.params.get("delay", 0.5)))
            return None
        if kind == "timeout":
            raise SimulatedTimeout()
        if kind == "drop":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if kind == "429":
            return self.too_many(
                request,
                retry_after=fault.params.get("retry_after"),
                text=fault.params.get("text_body", False),
            )
        status = int(kind)
        return self.error(status, "Injected server error")

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        """The API's 429 (subclasses add their real body and headers)."""
        response = self.error(429, "Too many requests")
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        method = request.method
        kwargs: dict[str, str] | None = None
        route_name, func = "unknown", None
        if (early := self.preroute(method, path)) is not None:
            route_name, func, kwargs = early
        else:
            for route_method, pattern, name, handler in self._routes:
                if route_method == method and (found := pattern.match(path)):
                    route_name, func, kwargs = name, handler, found.groupdict()
                    break
        with self._lock:
            self.requests[f"{method} {route_name}"] += 1
        fault = self.faults.take(request, FaultInjector.GENERIC)
        response = self.generic_fault(request, fault) if fault else None
        if response is None:
            response = self.authenticate(request)
        if response is None and self.sandbox.enforce_limits:
            response = self.rate_limit(request, route_name)
        if response is None:
            if func is None or kwargs is None:
                response = self.not_found(request)
            else:
                with self._lock:
                    response = func(request, **kwargs)
        with self._lock:
            self.status_counts[response.status_code] += 1
            if len(self.log) < 100_000:
                self.log.append((method, path, response.status_code))
        return response

    def total_requests(self) -> int:
        return sum(self.requests.values())


class Sandbox:
    """The four fakes over one world; routes a request to the fake that owns its path."""

    def __init__(self, world: Any, *, enforce_limits: bool = False, time_scale: float = 1.0):
        self.world = world
        # When enforced, budgets use real time; ``time_scale`` shrinks windows (0.01 turns
        # Zendesk's 10/min into 10 per 0.6 s) so budget tests run quickly.
        self.enforce_limits = enforce_limits
        self.time_scale = time_scale
        self.apis: dict[str, FakeAPI] = {}
        # Lazy seeding (``build_sandbox(lazy=True)``): fakes asked for first are seeded first.
        self._demand: list[str] = []
        self._seeding = threading.Condition()
        self._seeder: threading.Thread | None = None
        self.webhooks: Any = None  # a hub.sandbox.webhooks.WebhookSender once attached

    def add(self, api: FakeAPI) -> FakeAPI:
        self.apis[api.name] = api
        return api

    def api(self, name: str) -> FakeAPI:
        return self.apis[name]

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/__sandbox/"):
            return self.control(request)
        for api in self.apis.values():
            if api.owns(path):
                self.wait_seeded(api)
                try:
                    return api.handle(request)
                except SimulatedTimeout:
                    raise httpx.ReadTimeout("timed out (injected)", request=request) from None
        return json_response(404, {"status": "error", "message": f"No sandbox API serves {path}"})

    def control(self, request: httpx.Request) -> httpx.Response:
        """The sandbox's own endpoints (no auth; loopback only):

        - ``GET|POST|DELETE /__sandbox/faults``: list, inject (``{"api", "kind", "path"?,
          "method"?, "count"? (default -1: until cleared, as ``--fault``), "after"?,
          "params"? }``; a ``scope``/``scopes``, ``indexes`` or ``ids`` param is a list or a
          comma-separated string),
          clear (``?api=``);
        - ``POST /__sandbox/advance?days=N``: move the world N days on, with its activity;
        - ``GET /__sandbox/clock``: the world's time;
        - ``GET|POST|DELETE /__sandbox/webhooks``: see ``hub.sandbox.webhooks.control``.
        """
        path, method = request.url.path.rstrip("/"), request.method
        if path == "/__sandbox/faults":
            if method == "GET":
                listed = [
                    {"api": name, **dataclasses.asdict(f)}
                    for name, api in self.apis.items()
                    for f in api.faults.pending()
                ]
                return json_response(200, {"faults": listed})
            if method == "DELETE":
                wanted = request.url.params.get("api")
                for name, api in self.apis.items():
                    if wanted in (None, name):
                        api.faults.clear()
                return httpx.Response(204)
            if method == "POST":
                example = '{"api": "hubspot", "kind": "429", "count": 2}'
                try:
                    spec = json.loads(request.content or b"{}")
                except ValueError as exc:
                    message = f"the body is not JSON ({exc}): send an object such as {example}"
                    return json_response(400, {"status": "error", "message": message})
                try:
                    if not isinstance(spec, dict):
                        raise ValueError(f"the body must be a JSON object such as {example}")
                    known = {"api", "kind", "path", "method", "count", "after", "params"}
                    unknown = sorted(set(spec) - known)
                    if unknown:
                        raise ValueError(
                            f"unknown key {unknown[0]!r}: the keys are {', '.join(sorted(known))}"
                        )
                    if "api" not in spec or "kind" not in spec:
                        raise ValueError(f'"api" and "kind" are required, e.g. {example}')
                    for key in ("count", "after"):
                        if key in spec and not whole(spec[key]):
                            raise ValueError(f'"{key}" must be a whole number, not {spec[key]!r}')
                    # The same default as ``--fault``: until cleared.
                    fault = self.inject(**{"count": -1, **spec})
                except (ValueError, TypeError) as exc:
                    return json_response(400, {"status": "error", "message": str(exc)})
                return json_response(201, {"fault": dataclasses.asdict(fault)})
        if path == "/__sandbox/advance" and method == "POST":
            from hub.sandbox.world import advance

            given = request.url.params.get("days", "1")
            days = int(given) if given.strip().isdigit() else 0
            if days < 1:
                return json_response(
                    400,
                    {
                        "status": "error",
                        "message": f"days={given!r} is not a number of days: give a whole "
                        "number from 1, e.g. /__sandbox/advance?days=3",
                    },
                )
            self.wait_seeded()
            advance(self, days)
            return json_response(200, {"now": self.world.now().isoformat()})
        if path.startswith("/__sandbox/webhooks"):
            from hub.sandbox.webhooks import control

            self.wait_seeded()
            return control(self, request)
        if path == "/__sandbox/clock" and method == "GET":
            return json_response(200, {"now": self.world.now().isoformat()})
        return json_response(404, {"status": "error", "message": f"No sandbox control at {path}"})

    def inject(
        self,
        api: str,
        kind: str,
        path: str | None = None,
        method: str | None = None,
        count: int = 1,
        after: int = 0,
        params: dict[str, Any] | None = None,
    ) -> Fault:
        """Queue a fault on one fake (``ValueError`` for an unknown fake or kind). A
        ``scope``/``scopes``, ``indexes`` or ``ids`` param given as one string is split on
        commas, never into characters, and one number (``--fault …:indexes=0``) is a list
        of one."""
        if api not in self.apis:
            raise ValueError(f"no sandbox API named {api!r} (known: {', '.join(self.apis)})")
        known = self.apis[api].fault_kinds
        if known is not None and str(kind) not in FaultInjector.GENERIC | known:
            kinds = ", ".join(fault_kinds_text(self.apis[api]))
            raise ValueError(f"the {api} fake has no fault {kind!r} (kinds: {kinds})")
        if not isinstance(params or {}, dict):
            raise ValueError('"params" must be an object, e.g. {"indexes": "0,2"}')
        params = dict(params or {})
        for key in ("scope", "scopes", "indexes", "ids"):
            params[key] = list_param(key, params[key]) if key in params else None
            if params[key] is None:
                del params[key]
        self.apis[api].check_fault(str(kind), params)
        return self.apis[api].faults.inject(
            str(kind),
            count=int(count),
            path=path,
            method=method,
            after=int(after),
            **params,
        )

    # -- lazy seeding ----------------------------------------------------------------------

    def start_seeding(self) -> threading.Thread:
        """Seed every fake not seeded yet in a background thread, those a request waits for
        first, quick ones (``seed_rank``) before slow ones (the fakes seed independently: the
        world is the same in any order)."""
        with self._seeding:
            if self._seeder is None:
                # A big world lives as long as the process serving it: keep the cyclic GC
                # from rescanning it afterwards.
                freeze = getattr(self.world, "size", 0) >= FREEZE_FROM
                self._seeder = threading.Thread(
                    target=self._seed_all, args=(freeze,), name="hub-sandbox-seed", daemon=True
                )
                self._seeder.start()
            return self._seeder

    def wait_seeded(self, api: FakeAPI | None = None) -> None:
        """Block until ``api`` (default: every fake) is seeded, asking for it first."""
        wanted = [api] if api is not None else list(self.apis.values())
        if all(a.seeded.is_set() for a in wanted):
            return
        with self._seeding:
            self._demand.extend(a.name for a in wanted if not a.seeded.is_set())
            self._seeding.notify_all()
            running = self._seeder is not None
        if not running:
            self._seed_all(until=wanted)  # no background seeder: seed what is asked, here
        for a in wanted:
            a.seeded.wait()

    def _seed_all(self, freeze: bool = False, until: list[FakeAPI] | None = None) -> None:
        while until is None or not all(a.seeded.is_set() for a in until):
            with self._seeding:
                pending = [a for a in self.apis.values() if not a.seeded.is_set()]
                if not pending:
                    if freeze:
                        gc.freeze()
                    return
                wanted = [self.apis[n] for n in self._demand if not self.apis[n].seeded.is_set()]
                # Quick fakes first, among those asked for (so they answer at once), else
                # among all.
                api = min(wanted or pending, key=lambda a: (bool(a.seed_after), a.seed_rank))
                self._demand = [n for n in self._demand if n != api.name]
            if api.seed_after and any(not self.apis[n].seeded.is_set() for n in api.seed_after):
                api = next(self.apis[n] for n in api.seed_after if not self.apis[n].seeded.is_set())
            with api._lock:
                if api.seeded.is_set():
                    continue
                was_enabled = gc.isenabled()
                gc.disable()  # millions of long-lived objects: see build_sandbox
                try:
                    api.seed()
                finally:
                    if was_enabled:
                        gc.enable()
                api.seeded.set()

    def transport(self) -> httpx.MockTransport:
        """An ``httpx`` transport that answers from this sandbox in process."""
        return httpx.MockTransport(self.handle)

    def reset_counts(self) -> None:
        for api in self.apis.values():
            api.requests.clear()
            api.status_counts.clear()
            api.log.clear()

    # -- loopback HTTP ------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
        """Start serving over HTTP in a background thread; returns the running server."""
        from hub.sandbox.serving import SandboxServer, make_handler

        server = SandboxServer((host, port), make_handler(self))
        server.sandbox = self
        thread = threading.Thread(target=server.serve_forever, name="hub-sandbox", daemon=True)
        thread.start()
        server.thread = thread
        return server


def fault_kinds_text(api: FakeAPI) -> list[str]:
    """The fault kinds a fake answers, generic ones first (for errors and ``--help``)."""
    generic = ["429", "500", "502", "503", "504", "timeout", "slow", "drop"]
    return generic + sorted((api.fault_kinds or frozenset()) - set(generic))


def rng_for(seed: int, *parts: Any) -> random.Random:
    """A deterministic random generator for one purpose within a seeded world."""
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def as_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


__all__ = [
    "ARCHETYPES",
    "COMPETITORS",
    "FREEMAIL_DOMAINS",
    "OUR_TECHNOLOGY",
    "Clock",
    "Company",
    "FakeAPI",
    "Fault",
    "FaultInjector",
    "Sandbox",
    "SimulatedTimeout",
    "SlidingWindow",
    "base_url",
    "defaultdict",
    "fault_kinds_text",
    "json_response",
    "request_json",
    "rng_for",
    "route",
    "text_response",
]


def __getattr__(name: str) -> Any:
    # ``SandboxServer`` moved to ``hub.sandbox.serving``; still importable from here.
    if name == "SandboxServer":
        from hub.sandbox.serving import SandboxServer

        return SandboxServer
    raise AttributeError(name)
