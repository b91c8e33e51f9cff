"""``hub serve``: a local web app over the hub's database, and its webhook receivers.

``create_app(WebOptions(db_path=...))`` builds the ASGI app; ``serve()`` runs it on uvicorn.
Pages are rendered on the server (Jinja2, autoescaped) with inline SVG charts; every asset
ships in this package (``templates/``, ``static/``), so nothing is fetched from elsewhere.
Read-only unless started with ``allow_actions``; see ``hub.web.app`` for the safety rules
and ``hub.web.webhooks`` for the receivers. Names load lazily: connectors import
``hub.web.webhooks`` for their verifiers without pulling in the server.
"""

from __future__ import annotations

from typing import Any

_NAMES = {
    "WebOptions": "hub.web.app",
    "check_bind": "hub.web.app",
    "create_app": "hub.web.app",
    "is_loopback": "hub.web.app",
    "serve": "hub.web.server",
}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(name)


__all__ = sorted(_NAMES)
