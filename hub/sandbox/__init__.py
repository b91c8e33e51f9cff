"""Stateful fakes of the Zendesk, Stripe, HubSpot and BuiltWith APIs with a seeded world.

One implementation, two ways to run it: in process as an ``httpx.MockTransport``
(``Sandbox.transport()``) and over loopback HTTP (``hub sandbox serve``). See
``hub.sandbox.base`` for the pieces every fake shares, ``hub.sandbox.serving`` for loopback
HTTP and ``hub.sandbox.world`` for the world.
"""

from __future__ import annotations
