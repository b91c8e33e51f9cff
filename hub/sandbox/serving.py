"""Loopback HTTP for the sandbox: a threading server whose handler turns each request into an
``httpx.Request`` for ``Sandbox.handle`` (HEAD, chunked bodies, ``Expect: 100-continue``,
keep-alive; a fake's bug answers a 500 instead of hanging up).

The request path is thin because paging clients make thousands of requests and every fake's
records-per-CPU-second figure pays it: the request line and headers are parsed once, by
hand (``http.server``'s e-mail header parser cost more than most fakes' answers), and the
``httpx.URL`` is built from a cached parse of scheme, host and path plus the query string as
sent, when that query is already in the form ``httpx`` would give it (so the URL is the
one ``httpx.URL(text)`` makes, without re-validating a long query character by character).
"""

from __future__ import annotations

import functools
import re
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from hub.sandbox.base import Sandbox, json_response

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
_MAX_LINE = 65536
_MAX_HEADERS = 100
# What ``httpx`` leaves as it is in a query (its "query percent-encode set" spared): printable
# ASCII but space, '"', '#', '<' and '>'. A query made only of these is kept byte for byte.
_QUERY_AS_IS = re.compile(
    "[" + re.escape("".join(chr(i) for i in range(0x21, 0x7F) if chr(i) not in '"#<>')) + "]*"
)
_DROPPED = frozenset({"transfer-encoding", "expect"})  # hop-by-hop: handled here


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


class _ServedURL(httpx.URL):
    """An ``httpx.URL`` whose ``params`` are parsed once (fakes read them several times per
    request: authentication, routing, the handler)."""

    @functools.cached_property
    def params(self) -> httpx.QueryParams:  # type: ignore[override]
        return super().params


@functools.lru_cache(maxsize=4096)
def _base(host: str, path: str) -> httpx.URL:
    return _ServedURL(f"http://{host}{path}")


def _with_query(base: httpx.URL, query: str) -> httpx.URL:
    url = _ServedURL.__new__(_ServedURL)
    url._uri_reference = base._uri_reference._replace(query=query)  # type: ignore[attr-defined]
    return url


def request_url(host: str, target: str, fast: bool = True) -> httpx.URL:
    """The ``httpx.URL`` of a request target (origin form) sent to ``host``: the same URL as
    ``httpx.URL(f"http://{host}{target}")`` (``InvalidURL`` when that would raise)."""
    if fast and _FAST and target.startswith("/") and "#" not in target:
        path, sep, query = target.partition("?")
        if not sep:
            return _base(host, path)
        if _QUERY_AS_IS.fullmatch(query):
            return _with_query(_base(host, path), query)
    return httpx.URL(f"http://{host}{target}")


def _fast_path_holds() -> bool:
    """Whether building a URL from parts gives what ``httpx`` parses (its internals may move)."""
    try:
        for target in ("/v1/x?a=1&b=%2C&c=d:e/f?g&h=", "/p", "/p?", "/a/b?KEY=x%ZZ%20y"):
            fast = request_url("127.0.0.1:8111", target, fast=True)
            slow = httpx.URL(f"http://127.0.0.1:8111{target}")
            same = fast == slow and str(fast) == str(slow) and fast.raw_path == slow.raw_path
            if not same or fast.params != slow.params or fast.params != slow.params:
                return False
        return True
    except Exception:  # an httpx without these internals: parse every URL whole
        return False


_FAST = True
_FAST = _fast_path_holds()


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def make_handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Nagle plus delayed ACK adds ~40 ms per keep-alive request otherwise.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def handle_one_request(self) -> None:
            try:
                self._one()
            except (TimeoutError, ConnectionError):
                self.close_connection = True
            except _BadRequest as exc:
                try:
                    self._refuse(exc.status, str(exc))
                except OSError:
                    self.close_connection = True

        def _refuse(self, status: int, message: str) -> None:
            """A protocol error (bad request line or headers): answer and hang up, as
            ``http.server`` does."""
            self.close_connection = True
            body = message.encode("latin-1", "replace")
            phrase = HTTPStatus(status).phrase
            self.wfile.write(
                f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n".encode("latin-1")
                + body
            )
            self.wfile.flush()

        def _one(self) -> None:
            rfile = self.rfile
            raw = rfile.readline(_MAX_LINE + 1)
            if not raw:
                self.close_connection = True
                return
            if len(raw) > _MAX_LINE:
                raise _BadRequest(414, "Request-URI Too Long")
            words = raw.decode("latin-1").split()
            if not words:
                self.close_connection = True
                return
            if len(words) != 3 or not words[2].startswith("HTTP/"):
                raise _BadRequest(400, f"Bad request line {raw[:200]!r}")
            method, target, version = words
            self.command, self.path, self.request_version = method, target, version
            if version not in ("HTTP/1.1", "HTTP/1.0"):
                raise _BadRequest(505, f"Unsupported HTTP version {version[:20]}")
            headers: list[tuple[str, str]] = []
            while True:
                line = rfile.readline(_MAX_LINE + 1)
                if line in (b"\r\n", b"\n", b""):
                    break
                if len(line) > _MAX_LINE:
                    raise _BadRequest(431, "Header line too long")
                text = line.decode("latin-1")
                if text[0] in " \t" and headers:  # an obsolete folded continuation line
                    name, value = headers[-1]
                    headers[-1] = (name, f"{value} {text.strip()}")
                    continue
                name, colon, value = text.partition(":")
                if not colon or not name or name != name.strip():
                    raise _BadRequest(400, f"Bad header line {line[:200]!r}")
                headers.append((name, value.strip()))
                if len(headers) > _MAX_HEADERS:
                    raise _BadRequest(431, f"More than {_MAX_HEADERS} headers")
            lower = {name.lower(): value for name, value in headers}
            connection = lower.get("connection", "").lower()
            if version == "HTTP/1.1":
                self.close_connection = "close" in connection
            else:
                self.close_connection = "keep-alive" not in connection
            if method not in _METHODS:
                raise _BadRequest(501, f"Unsupported method ({method!r})")
            if version == "HTTP/1.1" and lower.get("expect", "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()
            body = self._read_body(lower)
            host = lower.get("host") or "{}:{}".format(*self.server.server_address[:2])
            try:
                url = request_url(host, target)
            except httpx.InvalidURL as exc:
                raise _BadRequest(400, f"Bad request target: {exc}") from None
            head = method == "HEAD"
            # HEAD answers what GET would, without the body (RFC 9110).
            request = httpx.Request(
                "GET" if head else method,
                url,
                headers=[(k, v) for k, v in headers if k.lower() not in _DROPPED],
                content=body,
            )
            request.url = url  # ``Request`` copies it into a plain ``URL``: keep the parse-once one
            self._answer(request, head)

        def _read_body(self, lower: dict[str, str]) -> bytes:
            # Always read the body, even on GET: a leftover body corrupts the next request.
            rfile = self.rfile
            if "chunked" in lower.get("transfer-encoding", "").lower():
                parts = []
                while True:
                    size_line = rfile.readline(_MAX_LINE + 1).split(b";")[0].strip()
                    try:
                        size = int(size_line or b"0", 16)
                    except ValueError:
                        raise _BadRequest(400, f"Bad chunk size {size_line[:40]!r}") from None
                    if size == 0:
                        while rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(rfile.read(size))
                    rfile.readline(_MAX_LINE + 1)  # the CRLF after each chunk
            given = lower.get("content-length") or "0"
            if not given.isdigit():
                raise _BadRequest(400, f"Bad Content-Length {given[:40]!r}")
            length = int(given)
            return rfile.read(length) if length else b""

        def _answer(self, request: httpx.Request, head: bool) -> None:
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

    return _Handler
