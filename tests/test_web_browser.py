"""``hub serve`` in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Two real servers (``hub serve`` subprocesses) on a small demo database: one read-only, one
with ``--allow-actions``. Every page must load with no console error and no failed request;
the flows a CS lead and an admin follow are clicked through; a screenshot of each page is
written to ``tests/artifacts/web/`` for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web_support import demo_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "web"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extras install it
    sync_playwright = None

if sync_playwright is None or not Path(CHROMIUM).exists():
    reason = "needs pip 'playwright' and Debian's chromium (apt-get install -y chromium)"
    if os.environ.get("CI"):
        raise RuntimeError(f"browser tests cannot run: {reason}")
    pytest.skip(reason, allow_module_level=True)


def _hub() -> list[str]:
    exe = Path(sys.executable).with_name("hub")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hub"]


class Server:
    """A ``hub serve`` subprocess on a free port; ``url`` once it listens."""

    def __init__(self, db: Path, *extra: str):
        env = {**os.environ, "COLUMNS": "300", "TERM": "dumb", "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [*_hub(), "--db", str(db), "serve", "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.url = ""

    def wait(self) -> Server:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if found:
                self.url = found.group(1)
                return self
        raise RuntimeError(f"hub serve exited with {self.proc.wait()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return demo_database(tmp_path_factory, tmp_path_factory.mktemp("browser") / "hub.db")


@pytest.fixture(scope="module")
def servers(db) -> Iterator[tuple[Server, Server]]:
    read_only, actions = Server(db), Server(db, "--allow-actions")
    try:
        yield read_only.wait(), actions.wait()
    finally:
        read_only.stop()
        actions.stop()


@pytest.fixture(scope="module")
def browser():
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


class Watched:
    """A page that records console errors and failed or erroring requests."""

    def __init__(self, browser, base: str):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(8000)
        self.base = base
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on(
            "response",
            lambda r: self.problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
        )

    def go(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, path

    def shot(self, name: str) -> None:
        """Screenshot the page, after checking it fits the window's width."""
        overflow = self.page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"{self.page.url} is {overflow}px wider than the window"
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.page.close()


def test_every_page_loads_cleanly(servers, browser, db):
    read_only, _ = servers
    w = Watched(browser, read_only.url)
    try:
        for name, path in [
            ("overview", "/"),
            ("accounts", "/accounts"),
            ("portfolio", "/portfolio"),
            ("identity", "/identity"),
            ("runs", "/runs"),
            ("settings", "/settings"),
        ]:
            w.go(path)
            assert w.page.locator("h1").count() == 1
            w.shot(name)
        w.go("/runs")
        w.page.locator("a[href^='/runs/']").first.click()
        assert w.page.locator("h1").inner_text().startswith("Run ")
        w.shot("run")
        assert w.problems == []
        missing = w.page.goto(read_only.url + "/accounts/no-such-account")
        assert missing is not None and missing.status == 404
        assert w.page.locator("h1").inner_text() == "Not found"
        w.shot("not-found")
    finally:
        w.close()


def test_overview_red_account_stripe_timeline_explain(servers, browser):
    read_only, _ = servers
    w = Watched(browser, read_only.url)
    try:
        w.go("/")
        w.page.locator("a.card[href='/accounts?band=red']").click()
        assert "band=red" in w.page.url
        bands = w.page.locator("table.accounts tbody .band").all_inner_texts()
        assert bands and set(bands) == {"red"}
        w.page.locator("table.accounts tbody a").first.click()
        assert re.search(r"/accounts/[^/?]+$", w.page.url)
        w.shot("account")
        w.page.select_option("#timeline select[name=source]", "stripe")
        w.page.locator("#timeline button[type=submit]").click()
        assert "source=stripe" in w.page.url
        sources = w.page.locator("table.timeline tbody tr td:nth-child(2)").all_inner_texts()
        assert sources and all(s.endswith("Stripe") for s in sources)
        w.shot("account-stripe-timeline")
        w.page.get_by_text("Explain the whole calculation").click()
        assert w.page.url.endswith("/explain")
        assert w.page.locator("h2", has_text="Contributions").count() == 1
        w.shot("explain")
        assert w.problems == []
    finally:
        w.close()


def test_identity_link_shows_on_account_after_map(servers, browser, db):
    _, actions = servers
    w = Watched(browser, actions.url)
    try:
        w.go("/identity")
        row = w.page.locator("table.identity tbody tr", has=w.page.locator(".suggestion form"))
        first = row.first
        entity = first.locator("code").first.inner_text()
        target = first.locator(".suggestion a").first.get_attribute("href")
        first.locator(".suggestion button").first.click()
        assert "msg=linked" in w.page.url
        assert w.page.locator(".flash").inner_text().startswith("Link recorded")
        w.shot("identity-linked")
        done = subprocess.run([*_hub(), "--db", str(db), "map"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        w.go(target)
        links = w.page.locator("#links tr", has_text=entity)
        assert "linked by hand on the identity page" in links.inner_text()
        w.shot("account-after-link")
        assert w.problems == []
    finally:
        w.close()


def test_actions_refused_without_flag_or_csrf(servers, browser):
    read_only, actions = servers
    w = Watched(browser, read_only.url)
    try:
        w.go("/identity")
        assert w.page.locator("form[action='/identity/link']").count() == 0
        form = {"entity": "x", "account_id": "y", "csrf_token": "z"}
        refused = w.page.request.post(read_only.url + "/identity/link", form=form)
        assert refused.status == 403 and "--allow-actions" in refused.text()
        forged = w.page.request.post(actions.url + "/identity/link", form=form)
        assert forged.status == 403 and "CSRF" in forged.text()
        run = w.page.request.post(actions.url + "/runs/now", form={"connection": "stripe"})
        assert run.status == 403
    finally:
        w.close()
