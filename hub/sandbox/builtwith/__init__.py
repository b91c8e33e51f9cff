"""Fake BuiltWith Domain API: technology profiles of the world's company domains.

Facts followed (see ``shared/specs/builtwith/README.md``): ``GET /v{N}/api.json?KEY=&LOOKUP=``
with up to 16 comma-separated domains; the version segment moves (v20…v26 seen), so any
``N >= 20`` is served (``/v1/…`` belongs to Stripe). Errors come back in a top-level ``Errors``
array, often with HTTP 200: a key that is not a GUID (-2, 200), out of credits (-3, 200), an
invalid or unknown root domain (-8, one item per domain beside the other domains' Results). A
GUID that is not the account's key answers 401 with the same body. ``/whoamiv1/api.json`` and
``/usagev2/api.json`` cost no credits. Every authenticated answer carries
``X-API-CREDITS-AVAILABLE`` / ``-USED`` / ``-REMAINING``.

Choices where the docs are silent (documented so the connector does not depend on luck):
- each domain that returns a Result costs 1 credit; per-domain errors cost nothing; a
  repeated domain in one LOOKUP is answered and charged once;
- when credits run out part-way through a batch, the domains that fit are answered and the
  rest get a per-domain ``-3`` item; with no credits at all the whole call is one ``-3``;
- more than 16 domains: 200 with one ``-7`` item and no Results (nothing charged);
- error items are ``{"Lookup": <domain or null>, "Message": ..., "Code": <int or null>}``;
- only ``api.json`` is rendered; ``api.xml``/``api.csv`` answer ``-1`` (unsupported here).

Data model: each domain's profile is generated lazily on first use from
``rng_for(seed, "builtwith", domain)`` and the company's facts as they were at seed time, so
building a 100k world is only an index of domains. A profile holds technologies as day numbers
(``first`` seen, ``gone`` = first day no longer seen). ``LastDetected`` is derived from the
clock: each domain is re-indexed every 1–3 days, so a current technology's ``LastDetected``
is always within the last 3 days ("current" for the mapping = within ~7 days), and a removed
one's stops at the last index before it went. ``advance()`` materialises only the few
profiles it changes (widget removed, competitor added, widget on a new subdomain).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.sandbox.base import (
    COMPETITORS,
    FREEMAIL_DOMAINS,
    OUR_TECHNOLOGY,
    Company,
    FakeAPI,
    SlidingWindow,
    json_response,
    rng_for,
    route,
)
from hub.sandbox.world import CREDENTIALS

DAY_MS = 86_400_000
MAX_LOOKUP = 16  # domains per multi-lookup call (docs; also whoami's max_batch_size)
REQUESTS_PER_SECOND = 10  # the llms.txt example budget; real accounts vary
DEFAULT_CREDITS = 1_000_000
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_FLAG_OFF = {"no", "false", "0"}

# name -> (description, link, tag, categories or None, premium, monthly spend USD, parent)
_CATALOGUE: dict[str, tuple[str, str, str, list[str] | None, bool, int, str | None]] = {
    "jQuery": (
        "JQuery is a fast, concise, JavaScript Library.",
        "https://jquery.com",
        "javascript",
        ["JavaScript Library"],
        False,
        0,
        None,
    ),
    "jQuery 3.6.0": (
        "jQuery version 3.6.0",
        "https://jquery.com",
        "javascript",
        None,
        False,
        0,
        "jQuery",
    ),
    "jQuery 1.12.4": (
        "jQuery version 1.12.4",
        "https://jquery.com",
        "javascript",
        None,
        False,
        0,
        "jQuery",
    ),
    "Google Analytics": (
        "Google Analytics offers a host of features for site owners.",
        "http://google.com/analytics",
        "analytics",
        ["Audience Measurement"],
        False,
        0,
        None,
    ),
    "Google Tag Manager": (
        "Tag management that lets marketers add and update website tags.",
        "https://tagmanager.google.com",
        "widgets",
        ["Tag Management"],
        False,
        0,
        None,
    ),
    "Cloudflare": (
        "Automatically optimizes the delivery of your web pages.",
        "https://www.cloudflare.com",
        "cdn",
        None,
        False,
        20,
        None,
    ),
    "Stripe": (
        "Stripe makes it easy for developers to accept credit cards on the web.",
        "https://stripe.com",
        "payment",
        ["Payments Processor"],
        False,
        0,
        None,
    ),
    "HubSpot": (
        "HubSpot is a marketing automation platform.",
        "https://www.hubspot.com",
        "analytics",
        ["Marketing Automation", "CRM"],
        True,
        800,
        None,
    ),
    "Zendesk": (
        "Customer service software and support ticket system.",
        "https://www.zendesk.com",
        "widgets",
        ["Ticketing System", "Live Chat"],
        True,
        150,
        None,
    ),
    "Facebook Pixel": (
        "Facebook Pixel is a conversion tracking tool.",
        "https://www.facebook.com/business",
        "analytics",
        ["Conversion Optimization"],
        False,
        0,
        None,
    ),
    "Let's Encrypt": (
        "Let's Encrypt is a free, automated, and open Certificate Authority.",
        "https://letsencrypt.org",
        "ssl",
        ["Root Authority"],
        False,
        0,
        None,
    ),
    "Nginx": (
        "nginx is an HTTP and reverse proxy server.",
        "https://nginx.org",
        "Web Server",
        ["Web Server"],
        False,
        0,
        None,
    ),
    "WordPress": (
        "WordPress is a semantic personal publishing platform.",
        "https://wordpress.org",
        "cms",
        ["Open Source"],
        False,
        0,
        None,
    ),
    "React": (
        "A JavaScript library for building user interfaces.",
        "https://react.dev",
        "javascript",
        ["JavaScript Library"],
        False,
        0,
        None,
    ),
    "Font Awesome": (
        "Iconic font and CSS toolkit.",
        "https://fontawesome.com",
        "widgets",
        ["Fonts"],
        False,
        0,
        None,
    ),
    "reCAPTCHA": (
        "Anti-bot CAPTCHA widget from Google.",
        "https://www.google.com/recaptcha",
        "widgets",
        ["CAPTCHA"],
        False,
        0,
        None,
    ),
    "Hotjar": (
        "Heatmaps and visitor recordings.",
        "https://www.hotjar.com",
        "analytics",
        ["Visitor Count Tracking"],
        True,
        99,
        None,
    ),
    "Shopify": (
        "Shopify is a hosted e-commerce platform.",
        "https://www.shopify.com",
        "shop",
        ["Hosted Solution"],
        True,
        300,
        None,
    ),
    "Amazon S3": (
        "Amazon S3 storage for static assets.",
        "https://aws.amazon.com/s3",
        "cdn",
        ["Cloud Storage"],
        False,
        40,
        None,
    ),
    "Google Workspace": (
        "Google's suite of business email and productivity tools.",
        "https://workspace.google.com",
        "mx",
        ["Business Email Hosting"],
        True,
        120,
        None,
    ),
    "SPF": (
        "Sender Policy Framework DNS record.",
        "https://www.open-spf.org",
        "mx",
        None,
        False,
        0,
        None,
    ),
    "DMARC": (
        "Email authentication policy and reporting.",
        "https://dmarc.org",
        "mx",
        None,
        False,
        0,
        None,
    ),
    "HSTS": (
        "HTTP Strict Transport Security.",
        "https://https.cio.gov/hsts/",
        "ssl",
        None,
        False,
        0,
        None,
    ),
    "Google Fonts": (
        "Open source font directory.",
        "https://fonts.google.com",
        "widgets",
        ["Fonts"],
        False,
        0,
        None,
    ),
    "Optimizely": (
        "A/B testing and experimentation platform.",
        "https://www.optimizely.com",
        "analytics",
        ["A/B Testing"],
        True,
        2000,
        None,
    ),
    "Akamai": (
        "Content delivery network.",
        "https://www.akamai.com",
        "cdn",
        ["CDN"],
        True,
        1500,
        None,
    ),
    "Angular": (
        "Web application framework.",
        "https://angular.dev",
        "framework",
        ["JavaScript Library"],
        False,
        0,
        None,
    ),
    OUR_TECHNOLOGY: (
        "Lumen customer engagement widget.",
        "https://lumen.example",
        "widgets",
        ["Live Chat", "Customer Engagement"],
        True,
        250,
        None,
    ),
    "Intercom": (
        "Customer messaging platform.",
        "https://www.intercom.com",
        "widgets",
        ["Live Chat"],
        True,
        400,
        None,
    ),
    "Drift": (
        "Conversational marketing platform.",
        "https://www.drift.com",
        "widgets",
        ["Live Chat"],
        True,
        500,
        None,
    ),
    "LiveChat": (
        "Live chat software for websites.",
        "https://www.livechat.com",
        "widgets",
        ["Live Chat"],
        True,
        50,
        None,
    ),
    "Tidio": (
        "Live chat and chatbots.",
        "https://www.tidio.com",
        "widgets",
        ["Live Chat"],
        True,
        30,
        None,
    ),
}
_COMMON = [
    "jQuery",
    "jQuery 3.6.0",
    "Google Analytics",
    "Google Tag Manager",
    "Cloudflare",
    "Stripe",
    "HubSpot",
    "Zendesk",
    "Facebook Pixel",
    "Let's Encrypt",
    "Nginx",
    "WordPress",
    "React",
    "Font Awesome",
    "reCAPTCHA",
    "Hotjar",
    "Amazon S3",
    "Google Fonts",
    "SPF",
    "DMARC",
]
_FREEMAIL_TECH = [
    "Google Analytics",
    "Google Tag Manager",
    "Akamai",
    "Optimizely",
    "HSTS",
    "SPF",
    "DMARC",
    "Angular",
    "React",
    "Google Fonts",
    "reCAPTCHA",
    "Let's Encrypt",
    "Nginx",
    "Amazon S3",
    "Facebook Pixel",
    "Font Awesome",
    "Google Workspace",
    "Hotjar",
]
_VERTICALS = [
    "Business And Industrial",
    "Technology And Computing",
    "Shopping",
    "Health",
    "Food And Drink",
    "Travel",
    "Finance",
]
_CITIES = [
    ("San Francisco", "CA", "94105", "US"),
    ("Austin", "TX", "73301", "US"),
    ("London", None, "EC1A 1BB", "GB"),
    ("Berlin", None, "10115", "DE"),
    ("Lisbon", None, "1100-148", "PT"),
    ("Toronto", "ON", "M5H 2N2", "CA"),
]
_EXPANSION_SUBDOMAINS = ["app", "help", "shop", "docs"]


@dataclass
class Tech:
    """One technology on one path of a domain; days are days since the Unix epoch."""

    name: str
    subdomain: str
    first: int  # first day detected
    gone: int | None = None  # first day it was no longer detected; None = still there

    def current(self, today: int) -> bool:
        return self.gone is None or self.gone > today


@dataclass
class Profile:
    """What BuiltWith knows about one domain: technologies plus indexing rhythm and meta."""

    domain: str
    company: Company | None
    period: int  # re-indexed every ``period`` days …
    phase: int  # … on days where (day + phase) % period == 0
    techs: list[Tech] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    spend_history: list[dict[str, int]] = field(default_factory=list)
    sales_revenue: int = 0

    def last_index(self, day: int) -> int:
        """The latest indexing day on or before ``day``."""
        return day - ((day + self.phase) % self.period)


def _day(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // 86400


def _flag(params: httpx.QueryParams, name: str) -> bool:
    """A flag is on when present, even empty (``NOPII=``), unless it says no."""
    if name not in params:
        return False
    return params[name].strip().lower() not in _FLAG_OFF


def normalise_domain(value: str) -> str:
    """Lower-case a LOOKUP item and strip scheme, path, port and a leading ``www.``."""
    text = value.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = re.split(r"[/?#]", text, maxsplit=1)[0].split(":", 1)[0].rstrip(".")
    if text.startswith("www."):
        text = text[4:]
    return text


class BuiltWithAPI(FakeAPI):
    """The BuiltWith Domain, WhoAmI and Usage APIs over the seeded world."""

    name = "builtwith"
    prefixes = ("/whoamiv1/", "/usagev2/")
    _LOOKUP_PATH = re.compile(r"^/v(\d+)/api\.(json|xml|csv)$")

    def __init__(self, sandbox: Any):
        super().__init__(sandbox)
        self.api_key: str = CREDENTIALS["builtwith"]["api_key"]
        # Credits: tests set ``credits_remaining`` to drive the -3 path.
        self.credits_remaining: int = DEFAULT_CREDITS
        self.credits_used: int = 0
        self._domains: dict[str, int] = {}  # domain -> key of the first company with it
        self._seed_facts: dict[int, tuple[bool, str | None, str]] = {}
        self._profiles: dict[str, Profile] = {}
        self._churn_candidates: list[int] = []  # at_risk + churned company keys
        self._expanding: list[int] = []
        self._window: SlidingWindow | None = None
        self._window_scale: float | None = None

    # -- routing and auth ---------------------------------------------------------------

    def owns(self, path: str) -> bool:
        match = self._LOOKUP_PATH.match(path)
        if match:
            # /v1/… is Stripe's; BuiltWith's Domain API versions start at 20.
            return int(match.group(1)) >= 20
        return path in ("/whoamiv1/api.json", "/usagev2/api.json")

    def error(
        self, status: int, message: str, code: int | None = None, **extra: Any
    ) -> httpx.Response:
        return json_response(status, self._envelope([], [self._error_item(None, message, code)]))

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        response = self.error(429, "Rate limit exceeded: slow down and retry later")
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    def _key_ok(self, request: httpx.Request) -> bool:
        return request.url.params.get("KEY", "") == self.api_key

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        key = request.url.params.get("KEY", "").strip()
        if key == self.api_key:
            return None
        body = self._envelope(
            [], [self._error_item(None, "API key wrong - it needs to be a Guid", -2)]
        )
        # Not a GUID at all: BuiltWith answers 200 with the error in the body (the CLI notes
        # errors "sometimes" arrive with 200). A well-formed but unknown GUID: 401.
        return json_response(401 if _GUID.match(key) else 200, body)

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        scale = self.sandbox.time_scale
        if self._window is None or self._window_scale != scale:
            self._window = SlidingWindow(REQUESTS_PER_SECOND, 1.0 * scale)
            self._window_scale = scale
        allowed, _remaining, wait = self._window.hit()
        if allowed:
            return None
        return self.too_many(request, retry_after=max(1, math.ceil(wait)))

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = super().handle(request)
        if self._key_ok(request):
            # "where available": only an identified account has a balance to report.
            with self._lock:
                response.headers["X-API-CREDITS-AVAILABLE"] = str(
                    self.credits_used + self.credits_remaining
                )
                response.headers["X-API-CREDITS-USED"] = str(self.credits_used)
                response.headers["X-API-CREDITS-REMAINING"] = str(self.credits_remaining)
        return response

    # -- routes -------------------------------------------------------------------------

    @route("GET", r"/v(?P<version>\d+)/api\.(?P<fmt>json|xml|csv)", name="domain")
    def domain_lookup(self, request: httpx.Request, version: str, fmt: str) -> httpx.Response:
        fault = self.faults.take(request, {"400", "403", "404"})
        if fault:  # client errors the generic kinds do not cover (the standard suite uses 400)
            return self.error(int(fault.kind), f"Injected {fault.kind} error")
        if fmt != "json":
            return self.error(
                200, f"Unsupported return type api.{fmt} in the sandbox: use api.json", -1
            )
        params = request.url.params
        raw = [part for part in params.get("LOOKUP", "").split(",") if part.strip()]
        if not raw:
            return self.error(200, "LOOKUP is required: one domain or up to 16 comma-separated", -8)
        lookups: list[str] = []
        for part in raw:
            domain = normalise_domain(part)
            if domain not in lookups:
                lookups.append(domain)
        if len(lookups) > MAX_LOOKUP:
            return self.error(
                200,
                f"Too many domains in one lookup: {len(lookups)} given, at most {MAX_LOOKUP} per call on this plan",
                -7,
            )
        if self.credits_remaining <= 0:
            return self.error(200, "Out of API credits: purchase more credits to continue", -3)
        options = {
            flag: _flag(params, flag)
            for flag in ("HIDETEXT", "HIDEDL", "LIVEONLY", "NOMETA", "NOPII", "NOATTR")
        }
        fd_range = _parse_range(params.get("FDRANGE"))
        ld_range = _parse_range(params.get("LDRANGE"))
        today = _day(self.world.clock.now())
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for domain in lookups:
            if not _DOMAIN.match(domain):
                errors.append(self._error_item(domain, "Invalid or unsupported root domain", -8))
                continue
            profile = self._profile(domain)
            if profile is None:
                errors.append(
                    self._error_item(
                        domain,
                        "Domain not found in the BuiltWith index: invalid or unsupported root domain",
                        -8,
                    )
                )
                continue
            if self.credits_remaining <= 0:
                errors.append(
                    self._error_item(
                        domain, "Out of API credits: purchase more credits to continue", -3
                    )
                )
                continue
            self.credits_remaining -= 1
            self.credits_used += 1
            results.append(self._render(profile, today, options, fd_range, ld_range))
        return json_response(200, self._envelope(results, errors))

    @route("GET", r"/whoamiv1/api\.json", name="whoami")
    def whoami(self, request: httpx.Request) -> httpx.Response:
        expiry = self.world.start + dt.timedelta(days=365)
        return json_response(
            200,
            {
                "account": {
                    "email": "admin@lumen.example",
                    "plan": "pro",
                    "plan_expiry": expiry.strftime("%Y-%m-%dT00:00:00Z"),
                    "max_batch_size": {"domain_lookup": MAX_LOOKUP, "domain_bulk_submit": 5000},
                },
                "rate_limits": {"requests_per_second": REQUESTS_PER_SECOND, "concurrency": 8},
                "credits": {
                    "purchased": self.credits_used + self.credits_remaining,
                    "used": self.credits_used,
                    "remaining": self.credits_remaining,
                    "costs": {"domain_lookup": 1, "whoami": 0, "usage": 0},
                },
                "privacy": {"pii_allowed": True, "flags_supported": ["NOPII"]},
            },
        )

    @route("GET", r"/usagev2/api\.json", name="usage")
    def usage(self, request: httpx.Request) -> httpx.Response:
        return json_response(
            200,
            {
                "used": self.credits_used,
                "purchased": self.credits_used + self.credits_remaining,
                "remaining": self.credits_remaining,
            },
        )

    # -- world --------------------------------------------------------------------------

    def seed(self) -> None:
        """Index the world's domains; profiles are generated on first use."""
        domains = self._domains
        facts = self._seed_facts
        for company in self.world.companies:
            domains.setdefault(company.domain, company.key)
            # Snapshot the facts profiles derive from, so a lazily built profile is the same
            # whenever it is built, even if someone edits the ground truth later.
            facts[company.key] = (company.uses_widget, company.competitor, company.archetype)
            if company.archetype in ("at_risk", "churned"):
                self._churn_candidates.append(company.key)
            elif company.archetype == "expanding":
                self._expanding.append(company.key)
        for domain in FREEMAIL_DOMAINS:
            domains.setdefault(domain, -1)

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        """One day of re-indexing: widgets removed, competitors added, widget on a subdomain."""
        rng = rng_for(self.world.seed, "builtwith", "advance", day_index)
        today = _day(end)
        for key in _pick(rng, self._churn_candidates, 0.01):
            profile = self._profile(self.world.companies[key].domain)
            if profile is None or profile.company is None or profile.company.key != key:
                continue
            widget = [t for t in profile.techs if t.name == OUR_TECHNOLOGY and t.current(today)]
            rival = [t for t in profile.techs if t.name in COMPETITORS and t.current(today)]
            # A competitor already there leaves only "lose the widget"; otherwise a coin flip.
            if widget and (rival or rng.random() < 0.5):
                for tech in widget:
                    tech.gone = today
            elif not rival:
                profile.techs.append(Tech(rng.choice(COMPETITORS), "", today))
        for key in _pick(rng, self._expanding, 0.005):
            profile = self._profile(self.world.companies[key].domain)
            if profile is None or profile.company is None or profile.company.key != key:
                continue
            taken = {t.subdomain for t in profile.techs if t.name == OUR_TECHNOLOGY}
            free = [s for s in _EXPANSION_SUBDOMAINS if s not in taken]
            if free:
                profile.techs.append(Tech(OUR_TECHNOLOGY, rng.choice(free), today))

    # -- inspection helpers for tests -----------------------------------------------------

    def technologies(self, domain: str) -> list[dict[str, Any]]:
        """Ground truth for ``domain`` now: name, subdomain, first/last detected (ms), current."""
        profile = self._profile(normalise_domain(domain))
        if profile is None:
            return []
        today = _day(self.world.clock.now())
        return [
            {
                "name": t.name,
                "subdomain": t.subdomain,
                "first_detected": t.first * DAY_MS,
                "last_detected": self._last_detected(profile, t, today) * DAY_MS,
                "current": t.current(today),
            }
            for t in profile.techs
            if t.first <= today
        ]

    def current_technologies(self, domain: str) -> set[str]:
        return {t["name"] for t in self.technologies(domain) if t["current"]}

    # -- profiles -----------------------------------------------------------------------

    def _profile(self, domain: str) -> Profile | None:
        profile = self._profiles.get(domain)
        if profile is None:
            key = self._domains.get(domain)
            if key is None:
                return None
            profile = self._generate(domain, None if key < 0 else self.world.companies[key])
            self._profiles[domain] = profile
        return profile

    def _generate(self, domain: str, company: Company | None) -> Profile:
        rng = rng_for(self.world.seed, "builtwith", domain)
        start_day = _day(self.world.start)
        period = rng.randint(1, 3)
        profile = Profile(
            domain=domain, company=company, period=period, phase=rng.randrange(period)
        )
        techs = profile.techs
        if company is None:
            # Free-mail providers: a big generic profile on several hosts; never a customer.
            for sub in ("", "mail", "accounts"):
                for name in rng.sample(_FREEMAIL_TECH, 12 if sub == "" else 6):
                    techs.append(Tech(name, sub, start_day - rng.randint(400, 4000)))
            profile.meta = _meta(rng, domain, None)
            profile.attributes = _attributes(rng, 50_000)
            profile.spend_history = _spend_history(rng, start_day, 5000)
            return profile
        uses_widget, competitor, archetype = self._seed_facts.get(
            company.key, (company.uses_widget, company.competitor, company.archetype)
        )
        created = _day(company.created_at)
        for name in rng.sample(_COMMON, rng.randint(4, 8)):
            techs.append(Tech(name, "", start_day - rng.randint(30, 1500)))
        names = {t.name for t in techs}
        for tech in list(techs):
            parent = _CATALOGUE[tech.name][6]
            if parent and parent not in names:  # a version implies its library
                techs.append(Tech(parent, "", tech.first))
                names.add(parent)
        if rng.random() < 0.3:
            # An old library version replaced years ago: history a client must not read as news.
            first = start_day - rng.randint(1200, 2000)
            techs.append(Tech("jQuery 1.12.4", "", first, first + rng.randint(200, 800)))
        if uses_widget:
            techs.append(Tech(OUR_TECHNOLOGY, "", created + rng.randint(1, 30)))
        elif archetype == "churned":
            # They had it as customers and took it off a few weeks ago.
            first = created + rng.randint(1, 20)
            techs.append(
                Tech(OUR_TECHNOLOGY, "", first, max(first + 2, start_day - rng.randint(14, 45)))
            )
        if competitor:
            techs.append(Tech(competitor, "", start_day - rng.randint(5, 60)))
        elif archetype in ("healthy", "expanding") and rng.random() < 0.1:
            # Switched from a competitor when they became our customer.
            techs.append(
                Tech(
                    rng.choice(COMPETITORS),
                    "",
                    created - rng.randint(100, 700),
                    created + rng.randint(5, 40),
                )
            )
        profile.meta = _meta(rng, domain, company)
        profile.attributes = _attributes(rng, company.seats * rng.randint(3, 10))
        profile.spend_history = _spend_history(rng, start_day, 1000)
        profile.sales_revenue = rng.choice(
            [0, 0, company.seats * company.unit_amount * 12 // 100 * 20]
        )
        return profile

    def _last_detected(self, profile: Profile, tech: Tech, today: int) -> int:
        seen_until = today if tech.current(today) else tech.gone - 1  # type: ignore[operator]
        return max(tech.first, profile.last_index(seen_until))

    def _render(
        self,
        profile: Profile,
        today: int,
        options: dict[str, bool],
        fd_range: tuple[int, int] | None,
        ld_range: tuple[int, int] | None,
    ) -> dict[str, Any]:
        last_indexed = profile.last_index(today) * DAY_MS
        paths: dict[str, list[dict[str, Any]]] = {}
        firsts: dict[str, int] = {}
        spend = 0
        for tech in profile.techs:
            if tech.first > today:
                continue
            live = tech.current(today)
            if options["LIVEONLY"] and not live:
                continue
            first_ms = tech.first * DAY_MS
            last_ms = self._last_detected(profile, tech, today) * DAY_MS
            if fd_range and not fd_range[0] <= first_ms <= fd_range[1]:
                continue
            if ld_range and not ld_range[0] <= last_ms <= ld_range[1]:
                continue
            description, link, tag, categories, premium, cost, parent = _CATALOGUE[tech.name]
            if live and premium:
                spend += cost
            item: dict[str, Any] = {}
            if parent:
                item["Parent"] = parent
            hide_text = options["HIDETEXT"]
            hide_dl = hide_text or options["HIDEDL"]
            item.update(
                {
                    "Name": tech.name,
                    "Description": None if hide_dl else description,
                    "Link": None if hide_dl else link,
                    "Tag": None if hide_text else tag,
                    "Categories": None if hide_text else (list(categories) if categories else None),
                    "FirstDetected": first_ms,
                    "LastDetected": last_ms,
                    "IsPremium": "yes" if premium else "no",
                }
            )
            paths.setdefault(tech.subdomain, []).append(item)
            firsts[tech.subdomain] = min(firsts.get(tech.subdomain, first_ms), first_ms)
        rendered_paths = [
            {
                "Technologies": technologies,
                "FirstIndexed": firsts[sub],
                "LastIndexed": last_indexed,
                "Domain": profile.domain,
                "Url": "",
                "SubDomain": sub,
            }
            for sub, technologies in sorted(paths.items())
        ]
        first_indexed = min(firsts.values(), default=last_indexed)
        meta: dict[str, Any] | None = None
        if not options["NOMETA"]:
            meta = dict(profile.meta)
            if options["NOPII"]:
                meta.update({"Telephones": None, "Emails": None, "Names": None})
        return {
            "Result": {
                "SpendHistory": [dict(point) for point in profile.spend_history],
                "IsDB": "True",
                "Spend": spend,
                "Paths": rendered_paths,
            },
            "Meta": meta,
            "Attributes": None if options["NOATTR"] else dict(profile.attributes),
            "FirstIndexed": first_indexed,
            "LastIndexed": last_indexed,
            "Lookup": profile.domain,
            "SalesRevenue": profile.sales_revenue,
        }

    # -- shapes -------------------------------------------------------------------------

    @staticmethod
    def _envelope(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Results": results, "Errors": errors, "Trust": None}

    @staticmethod
    def _error_item(lookup: str | None, message: str, code: int | None) -> dict[str, Any]:
        return {"Lookup": lookup, "Message": message, "Code": code}


def _pick(rng: Any, keys: list[int], rate: float) -> list[int]:
    """About ``rate * len(keys)`` keys, chosen without replacement (O(picked), not O(N))."""
    expected = len(keys) * rate
    count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
    return rng.sample(keys, min(count, len(keys))) if count else []


def _parse_range(value: str | None) -> tuple[int, int] | None:
    """``YYYYMMDD-YYYYMMDD`` (as the official CLI sends FDRANGE/LDRANGE) → epoch-ms bounds."""
    if not value or "-" not in value:
        return None
    try:
        low, high = (
            dt.datetime.strptime(part.strip(), "%Y%m%d").replace(tzinfo=dt.timezone.utc)
            for part in value.split("-", 1)
        )
    except ValueError:
        return None
    return int(low.timestamp()) * 1000, (int(high.timestamp()) + 86399) * 1000 + 999


def _meta(rng: Any, domain: str, company: Company | None) -> dict[str, Any]:
    city, state, postcode, country = rng.choice(_CITIES)
    return {
        "Majestic": rng.randint(1000, 900_000),
        "Umbrella": 0,
        "Vertical": rng.choice(_VERTICALS),
        "Social": [f"https://twitter.com/{domain.split('.')[0]}"],
        "CompanyName": company.name if company else None,
        "Telephones": [f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"],
        "Emails": [f"info@{domain}"],
        "City": city,
        "State": state,
        "Postcode": postcode,
        "Country": country,
        "Names": None,
        "ARank": rng.randint(1000, 2_000_000),
        "QRank": -1,
    }


def _attributes(rng: Any, employees: int) -> dict[str, Any]:
    attributes = dict.fromkeys(
        [
            "MJRank",
            "MJTLDRank",
            "RefSN",
            "RefIP",
            "Followers",
            "Sitemap",
            "GTMTags",
            "QubitTags",
            "TealiumTags",
            "AdobeTags",
            "CDimensions",
            "CGoals",
            "CMetrics",
            "ProductCount",
        ],
        0,
    )
    attributes["Employees"] = employees
    attributes["Sitemap"] = rng.randint(0, 400)
    attributes["GTMTags"] = rng.randint(0, 3)
    return attributes


def _spend_history(rng: Any, start_day: int, scale: int) -> list[dict[str, int]]:
    return [
        {"D": (start_day - months * 30) * DAY_MS, "S": rng.randint(0, scale)}
        for months in (24, 12, 1)
    ]


__all__ = ["MAX_LOOKUP", "BuiltWithAPI", "normalise_domain"]
