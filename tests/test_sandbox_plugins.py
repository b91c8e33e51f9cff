"""Plugin fakes join the sandbox: ``register_sandbox_apis`` → ``hub sandbox serve`` and tests."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from hub.errors import StartupError
from hub.sandbox.base import FakeAPI, json_response, route
from hub.sandbox.world import build_sandbox

PLUGIN = '''
"""A tiny plugin whose only part is a fake API (an entry point in group "hub")."""
import hub
from hub.sandbox.base import FakeAPI, json_response, route


class AcmeFake(FakeAPI):
    name = "acme"
    prefixes = ("/acme/",)
    credentials = {"api_key": "acme-sandbox-key"}

    def seed(self):
        self.widgets = [{"id": c.key, "name": c.name} for c in self.world.companies]

    @route("GET", r"/acme/widgets")
    def widgets_list(self, request):
        return json_response(200, {"widgets": self.widgets})


@hub.hookimpl
def register_sandbox_apis(register):
    register(AcmeFake)
'''


def _install_plugin(tmp: Path) -> None:
    (tmp / "hub_acme_fake.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp / "hub_acme_fake-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hub-acme-fake\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hub]\nacme = hub_acme_fake\n")


def test_serve_includes_a_plugin_fake(tmp_path):
    _install_plugin(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), PYTHONUNBUFFERED="1", COLUMNS="60")
    env.pop("HUB_LOAD_PLUGINS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "sandbox", "serve", "--port", "0", "--companies", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
        url, seen = None, []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and url is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            if line.strip().lower().startswith("acme"):
                url = line.split('base_url = "')[1].split('"')[0]
        assert url, "".join(seen)
        # The credentials line is not wrapped at the (narrow) terminal width.
        assert 'api_key = "acme-sandbox-key"' in seen[-1]
        body = httpx.get(f"{url}/acme/widgets", timeout=10).json()
        assert len(body["widgets"]) == 5
        # The built-ins still answer beside it.
        assert httpx.get(f"{url}/v1/customers", auth=("sk_test_hubsandbox", "")).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class _Echo(FakeAPI):
    name = "echo"
    prefixes = ("/echo/",)

    @route("GET", r"/echo/(?P<word>\w+)")
    def echo(self, request: httpx.Request, word: str) -> httpx.Response:
        return json_response(200, {"word": word, "companies": len(self.world.companies)})


def test_registered_fake_is_served_in_process():
    from hub import hookimpl
    from hub.plugins import pm
    from hub.registry import get_registry, reset_registry

    class Plugin:
        @hookimpl
        def register_sandbox_apis(self, register):
            register(_Echo)

    plugin = Plugin()
    pm.register(plugin, name="echo-plugin")
    reset_registry()
    try:
        apis = list(get_registry().sandbox_apis.values())
        sandbox = build_sandbox(companies=3, extra_apis=apis)
        client = httpx.Client(transport=sandbox.transport(), base_url="http://sandbox")
        assert client.get("/echo/hi").json() == {"word": "hi", "companies": 3}
    finally:
        pm.unregister(name="echo-plugin")
        reset_registry()


def test_wrong_or_clashing_fakes_are_refused():
    from hub.registry import Registry

    register = Registry().register_function("sandbox_apis")
    with pytest.raises(StartupError, match="not a hub.FakeAPI subclass"):
        register(object(), name="thing")

    class Clash(FakeAPI):
        name = "stripe"
        prefixes = ("/v1/",)

    with pytest.raises(StartupError, match="clashes"):
        register(Clash)

    class Shadowed(FakeAPI):
        name = "shadowed"
        prefixes = ("/v1/shadowed/",)  # Stripe owns /v1/: the request would never arrive

    with pytest.raises(ValueError, match="clashes with stripe"):
        build_sandbox(companies=1, extra_apis=[Shadowed])
