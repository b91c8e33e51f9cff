"""Running the app: uvicorn on one host and port, announcing the address when it listens."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import uvicorn

from hub.web.app import WebOptions, check_bind, create_app


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(
    options: WebOptions,
    *,
    port: int = 8321,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve until interrupted. ``port=0`` picks a free port; ``on_ready`` gets the URL once
    the socket listens (before the first request can arrive)."""
    check_bind(options.host, options.token, webhooks_only=options.webhooks_only)
    app = create_app(options)
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((options.host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    url = url_for(options.host, sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(url)
    server.run(sockets=[sock])


class Running:
    """An app served from a background thread (``serve_in_thread``): ``url``, ``stop()``."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str):
        self.server, self.thread, self.url = server, thread, url.rstrip("/")

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(options: WebOptions, *, port: int = 0, timeout: float = 10.0) -> Running:
    """Serve the app on loopback from a daemon thread (``hub demo``'s webhook section,
    tests); returns once it accepts connections. The app's own webhook worker runs with it."""
    check_bind(options.host, options.token, webhooks_only=options.webhooks_only)
    app = create_app(options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((options.host, port))
    sock.listen(128)
    url = url_for(options.host, sock.getsockname()[1])
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, server_header=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="hub-web", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.01)
    return Running(server, thread, url)
