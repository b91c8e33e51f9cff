"""Loopback HTTP for the sandbox: a threading server whose handler turns each request into an
``httpx.Request`` for ``Sandbox.handle`` (HEAD, chunked bodies, ``Expect: 100-continue``,
keep-alive; a fake's bug answers a 500 instead of hanging up)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from hub.sandbox.base import Sandbox, json_response


class SandboxServer(ThreadingHTTPServer):
    """Loopback HTTP server over a ``Sandbox``; ``url`` is its base URL."""

    daemon_threads = True
    allow_reuse_address = True
    sandbox: Sandbox
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def make_handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Nagle plus delayed ACK adds ~40 ms per keep-alive request otherwise.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _read_body(self) -> bytes:
            # Always read the body, even on GET: a leftover body corrupts the next request.
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _any(self) -> None:
            body = self._read_body()
            host = self.headers.get("host") or "{}:{}".format(*self.server.server_address[:2])
            url = f"http://{host}{self.path}"
            headers = [
                (k, v)
                for k, v in self.headers.items()
                if k.lower() not in ("transfer-encoding", "expect")
            ]
            head = self.command == "HEAD"
            # HEAD answers what GET would, without the body (RFC 9110).
            request = httpx.Request(
                "GET" if head else self.command, url, headers=headers, content=body
            )
            try:
                response = sandbox.handle(request)
            except httpx.ReadTimeout:
                time.sleep(0.05)
                self.close_connection = True
                return
            except httpx.TransportError:
                self.close_connection = True
                return
            except Exception as exc:  # a bug in a fake: answer like a real API's 500
                response = json_response(
                    500, {"status": "error", "message": f"sandbox error: {type(exc).__name__}"}
                )
            content = response.content
            lines = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
            for key, value in response.headers.items():
                if key.lower() in ("content-length", "transfer-encoding", "connection"):
                    continue
                lines.append(f"{key}: {value}")
            lines.append(f"content-length: {len(content)}")
            start = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            self.wfile.write(start if head else start + content)  # one write
            self.wfile.flush()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

    return _Handler
