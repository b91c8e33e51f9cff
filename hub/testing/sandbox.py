"""What a plugin author needs to write a fake of their API for the sandbox (see PLUGINS.md,
``register_sandbox_apis``): the ``FakeAPI`` base class, the ``route`` decorator and the JSON
response helper. Re-exported from ``hub.sandbox.base`` so plugins import from ``hub.testing``."""

from __future__ import annotations

from hub.sandbox.base import FakeAPI, json_response, route

__all__ = ["FakeAPI", "json_response", "route"]
