"""What a plugin needs to write a sandbox fake (served by ``hub sandbox serve`` through the
``register_sandbox_apis`` hook): the base class, the route decorator and response helpers."""

from __future__ import annotations

from hub.sandbox.base import FakeAPI, json_response, request_json, route, text_response

__all__ = ["FakeAPI", "json_response", "request_json", "route", "text_response"]
