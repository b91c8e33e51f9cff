"""``hub serve``: a local web app over the hub's database (pages now, webhooks later).

``create_app(WebOptions(db_path=...))`` builds the ASGI app; ``serve()`` runs it on uvicorn.
Pages are rendered on the server (Jinja2, autoescaped) with inline SVG charts; every asset
ships in this package (``templates/``, ``static/``), so nothing is fetched from elsewhere.
Read-only unless started with ``allow_actions``; see ``hub.web.app`` for the safety rules.
"""

from __future__ import annotations

from hub.web.app import WebOptions, check_bind, create_app, is_loopback
from hub.web.server import serve

__all__ = ["WebOptions", "check_bind", "create_app", "is_loopback", "serve"]
