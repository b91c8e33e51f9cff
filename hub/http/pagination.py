"""Paginators: how a stream finds its next page.

A paginator looks at a response and says where the next page is: extra query parameters
(``dict``), an absolute URL (``str``), or ``None`` when the stream is done. Every paginator
remembers the tokens it has handed out and raises ``FatalAPIError`` if an API hands one back
twice, because a loop would otherwise sync forever.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx

from hub.http.incremental import LoopGuard

NextPage = dict[str, Any] | str | None


def dig(body: Any, path: str | None) -> Any:
    """Follow a dotted path (``"paging.next.after"``) into decoded JSON; ``None`` if absent."""
    if not path:
        return body
    if "." not in path and type(body) is dict:
        return body.get(path)  # a record's own field: every record of every page asks
    for part in path.split("."):
        if isinstance(body, dict):
            body = body.get(part)
        elif isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        else:
            return None
    return body


class Paginator:
    """Base paginator: ``first_params()`` for page one, ``next_page()`` for the rest.

    ``target`` says where the parameters go: ``"query"`` (the query string) or ``"body"``
    (the JSON body of a POST search; keys may be dotted paths like ``pagination.after``).
    """

    target: str = "query"

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def fresh(self) -> Paginator:
        """A copy with no memory, for a new run."""
        clone = copy.copy(self)
        clone._seen = set()
        clone._loop = LoopGuard("the API")
        return clone

    def first_params(self) -> dict[str, Any]:
        return {}

    def next_page(self, response: httpx.Response, body: Any, records: list[Any]) -> NextPage:
        raise NotImplementedError

    def _guard(self, token: Any) -> None:
        if not hasattr(self, "_loop"):
            self._loop = LoopGuard("the API")
        self._loop.check(str(token))


class CursorPaginator(Paginator):
    """Cursor in the body, sent back as a parameter (Zendesk ``after_cursor``, HubSpot ``after``).

    Stops when ``stop_path`` is true, ``has_more_path`` is false, or no cursor comes back.
    """

    def __init__(
        self,
        cursor_path: str,
        param: str,
        *,
        stop_path: str | None = None,
        has_more_path: str | None = None,
        page_size: int | None = None,
        size_param: str | None = None,
        target: str = "query",
    ):
        super().__init__()
        self.target = target
        self.cursor_path = cursor_path
        self.param = param
        self.stop_path = stop_path
        self.has_more_path = has_more_path
        self.page_size = page_size
        self.size_param = size_param

    def first_params(self) -> dict[str, Any]:
        if self.page_size and self.size_param:
            return {self.size_param: self.page_size}
        return {}

    def next_page(self, response: httpx.Response, body: Any, records: list[Any]) -> NextPage:
        if self.stop_path and dig(body, self.stop_path):
            return None
        if self.has_more_path is not None and not dig(body, self.has_more_path):
            return None
        cursor = dig(body, self.cursor_path)
        if cursor in (None, ""):
            return None
        self._guard(cursor)
        return {**self.first_params(), self.param: cursor}


class NextLinkPaginator(Paginator):
    """An absolute next-page URL in the body (``links.next``, ``next_page``, ``paging.next.link``)."""

    def __init__(self, link_path: str, *, stop_path: str | None = None):
        super().__init__()
        self.link_path = link_path
        self.stop_path = stop_path

    def next_page(self, response: httpx.Response, body: Any, records: list[Any]) -> NextPage:
        if self.stop_path and dig(body, self.stop_path):
            return None
        link = dig(body, self.link_path)
        if not link:
            return None
        self._guard(link)
        return str(link)


class OffsetPaginator(Paginator):
    """``offset``/``limit`` style; stops on a short page."""

    def __init__(
        self,
        limit: int,
        *,
        offset_param: str = "offset",
        limit_param: str = "limit",
        start: int = 0,
    ):
        super().__init__()
        self.limit = limit
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.offset = start

    def first_params(self) -> dict[str, Any]:
        return {self.limit_param: self.limit, self.offset_param: self.offset}

    def next_page(self, response: httpx.Response, body: Any, records: list[Any]) -> NextPage:
        if len(records) < self.limit:
            return None
        self.offset += len(records)
        self._guard(self.offset)
        return {self.limit_param: self.limit, self.offset_param: self.offset}


class LastIdPaginator(Paginator):
    """Stripe style: ``starting_after=<id of the last record>`` while ``has_more`` is true."""

    def __init__(
        self,
        *,
        limit: int = 100,
        param: str = "starting_after",
        has_more_path: str = "has_more",
        id_field: str = "id",
    ):
        super().__init__()
        self.limit = limit
        self.param = param
        self.has_more_path = has_more_path
        self.id_field = id_field

    def first_params(self) -> dict[str, Any]:
        return {"limit": self.limit}

    def next_page(self, response: httpx.Response, body: Any, records: list[Any]) -> NextPage:
        if not dig(body, self.has_more_path) or not records:
            return None
        last = records[-1].get(self.id_field)
        if last is None:
            return None
        self._guard(last)
        return {"limit": self.limit, self.param: last}
