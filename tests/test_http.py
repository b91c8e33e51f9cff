"""The HTTP client: retries, Retry-After, rate limiting, scrubbing."""

from __future__ import annotations

import email.utils
import threading
import time

import httpx
import pytest

from hub.errors import (
    AmbiguousWriteError,
    DeferredError,
    FatalAPIError,
    RetriableAPIError,
    Stopped,
)
from hub.http import RetryPolicy, make_client, parse_retry_after, scrub_url
from hub.http.auth import QueryKeyAuth
from hub.http.ratelimit import Limiter, RateLimit


def client_for(handler, **kwargs):
    sleeps: list[float] = []
    client = make_client(
        base_url="https://api.test",
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
        **kwargs,
    )
    return client, sleeps


def test_retry_after_seconds_is_honoured():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"})
        return httpx.Response(200, json={"ok": True})

    client, sleeps = client_for(handler)
    assert client.get("/x").json() == {"ok": True}
    assert sleeps == [7.0, 7.0]
    assert client.stats.requests == 3 and client.stats.retries == 2 and client.stats.throttled == 2


def test_retry_after_http_date():
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after(future) <= 31
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("nonsense") is None


def test_backoff_is_capped_exponential_with_jitter():
    def handler(request):
        return httpx.Response(500, text="oops")

    client, sleeps = client_for(
        handler, retry=RetryPolicy(attempts=5, backoff_base=1.0, backoff_cap=4.0)
    )
    with pytest.raises(RetriableAPIError) as info:
        client.get("/x")
    assert "gave up after 5 attempts" in str(info.value)
    assert len(sleeps) == 4
    caps = [1.0, 2.0, 4.0, 4.0]
    for slept, cap in zip(sleeps, caps):
        assert cap / 2 <= slept <= cap


def test_4xx_is_not_retried():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(404, json={"error": {"message": "No such thing"}})

    client, sleeps = client_for(handler)
    with pytest.raises(FatalAPIError) as info:
        client.get("/things/1")
    assert len(calls) == 1 and sleeps == []
    assert "No such thing" in str(info.value)


def test_timeouts_and_resets_are_retried():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        if len(calls) == 2:
            raise httpx.RemoteProtocolError("reset", request=request)
        return httpx.Response(200, json={})

    client, _ = client_for(handler)
    client.get("/x")
    assert client.stats.retries == 2


def test_query_key_never_reaches_errors():
    secret = "0f3c2a9e-secret-key-canary"

    def handler(request):
        assert request.url.params["KEY"] == secret
        return httpx.Response(403, text=f"bad key {secret}")

    client, _ = client_for(handler, auth=QueryKeyAuth(secret), secrets=[secret])
    with pytest.raises(FatalAPIError) as info:
        client.get("/api.json", params={"LOOKUP": "a.com"})
    assert secret not in str(info.value)
    assert "?" not in str(info.value).split(" ")[1]
    assert scrub_url("https://x/a?KEY=s&b=1") == "https://x/a"
    assert secret not in repr(QueryKeyAuth(secret))


def test_rate_limiter_holds_budget_under_concurrency():
    rate = RateLimit("t", 10, 0.2)
    limiter = Limiter(rate)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) == 30
    # No 0.2 s window ever holds more than 10 requests.
    for i, start in enumerate(stamps):
        in_window = [s for s in stamps[i:] if s - start < 0.2 - 1e-3]
        assert len(in_window) <= 10
    # And the budget is used, not wasted: 30 requests need about 2 windows, not many more.
    assert stamps[-1] - stamps[0] < 0.2 * 2 + 0.15


def test_rate_limiter_pause():
    fake_now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        fake_now[0] += s

    limiter = Limiter(RateLimit("t", 100, 1.0), monotonic=lambda: fake_now[0], sleep=sleep)
    limiter.pause(5)
    limiter.acquire()
    assert sum(slept) == pytest.approx(5, abs=0.01)


# -- writes are never resent blindly -------------------------------------------------------------


def _counting(outcomes):
    """A handler answering each request with the next outcome (an exception class or status)."""
    calls: list[httpx.Request] = []

    def handler(request):
        calls.append(request)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        if isinstance(outcome, type) and issubclass(outcome, Exception):
            raise outcome("injected", request=request)
        headers = {"Retry-After": "0"} if outcome == 429 else {}
        return httpx.Response(outcome, json={"ok": outcome < 400}, headers=headers)

    return handler, calls


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, 502, 500]
)
def test_post_is_not_resent_after_it_may_have_arrived(failure):
    handler, calls = _counting([failure, 201])
    client, _ = client_for(handler)
    with pytest.raises(AmbiguousWriteError) as info:
        client.post("/tasks", json={"subject": "x"})
    assert len(calls) == 1 and client.stats.retries == 0
    assert "may or may not have happened" in str(info.value)


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout, 429])
def test_post_is_resent_when_it_cannot_have_arrived(failure):
    handler, calls = _counting([failure, 201])
    client, _ = client_for(handler)
    assert client.post("/tasks", json={}).status_code == 201
    assert len(calls) == 2


def test_read_only_posts_and_idempotency_keys_are_retried():
    handler, calls = _counting([502, httpx.ReadTimeout, 200])
    client, _ = client_for(handler)
    assert client.post("/search", json={}, idempotent=True).status_code == 200
    assert len(calls) == 3
    handler, calls = _counting([503, 200])
    client, _ = client_for(handler)
    client.post("/charges", json={}, headers={"Idempotency-Key": "k-1"})
    assert len(calls) == 2
    handler, calls = _counting([httpx.ReadTimeout, 200])
    client, _ = client_for(handler)
    with pytest.raises(AmbiguousWriteError):
        client.patch("/companies/1", json={})


# -- honest retries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, kind",
    [
        (b'{"data": [{"id": 1}, {"id"', "not JSON"),
        (b"", "an empty body"),
        (b"<html><body>Bad gateway</body></html>", "an HTML page"),
    ],
)
def test_garbage_200_is_retried_before_blaming_configuration(body, kind):
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(200, content=body, headers={"content-type": "text/html"})
        return httpx.Response(200, json={"data": []})

    client, sleeps = client_for(handler, require_json=True)
    assert client.get("/list").json() == {"data": []}
    assert len(calls) == 3 and len(sleeps) == 2

    calls.clear()

    def always(request):
        calls.append(request)
        return httpx.Response(200, content=body, headers={"content-type": "text/html"})

    client, _ = client_for(always, require_json=True, retry=RetryPolicy(attempts=3))
    with pytest.raises(RetriableAPIError) as info:
        client.get("/list")
    assert len(calls) == 3
    assert kind in str(info.value) and "base_url" in str(info.value)


def test_long_retry_after_defers_at_once_and_short_ones_are_waited_visibly():
    handler, calls = _counting([429])

    def long_wait(request):
        calls.append(request)
        return httpx.Response(429, headers={"Retry-After": "3600"}, json={"error": "slow"})

    client, sleeps = client_for(long_wait)
    with pytest.raises(DeferredError) as info:
        client.get("/x")
    assert len(calls) == 1 and sleeps == []  # no silent 10-minute block
    assert "3600 s" in str(info.value) and "next run" in str(info.value)

    heard = []
    seq = iter([httpx.Response(429, headers={"Retry-After": "31"}), httpx.Response(200, json={})])
    client, sleeps = client_for(
        lambda r: next(seq), label="Zendesk", on_wait=lambda s, m: heard.append(m)
    )
    client.get("/x")
    assert sleeps == [31.0]
    assert heard == ["waiting 31 s (Zendesk Retry-After)"]


def test_waits_wake_on_stop():
    stop = threading.Event()
    client = make_client(
        base_url="https://api.test",
        transport=httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "60"})),
        stop=stop,
    )
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        client.get("/x")
    assert time.monotonic() - started < 5


def test_json_bodies_decode_the_same_whichever_decoder_reads_them():
    """Pages are decoded by the fast decoder where it agrees with the standard one; integers
    beyond 64 bits and NaN take the standard decoder (no digit lost); garbage is a ValueError."""
    from hub.http import json_of

    big = 123456789012345678901234567890
    cases = {
        b'{"a":[1,2.5,"\\u00e9",null,true]}': {"a": [1, 2.5, "é", None, True]},
        f'{{"n":{big}}}'.encode(): {"n": big},
        b'{"n":18446744073709551615}': {"n": 18446744073709551615},
    }
    for body, expected in cases.items():
        assert json_of(httpx.Response(200, content=body)) == expected
    nan = json_of(httpx.Response(200, content=b'{"x":NaN}'))["x"]
    assert nan != nan
    with pytest.raises(ValueError):
        json_of(httpx.Response(200, content=b"<html>"))


def test_read_ahead_sends_the_next_page_early_and_raises_its_error_in_order():
    """A page asked for ahead is the answer ``get`` returns (one request, not two); a page
    asked for with other parameters is sent anew; an error of the page sent ahead is raised
    when that page is taken, not before."""
    from hub.http.readahead import ReadAhead

    seen: list[str] = []
    release = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page", "1")
        seen.append(page)
        if page == "2":
            release.wait(5)  # still in flight while the caller works on page 1
        if page == "4":
            return httpx.Response(400, json={"message": "bad cursor"})
        return httpx.Response(200, json={"page": page})

    client, _ = client_for(handler)
    with client, ReadAhead(client) as ahead:
        assert ahead.get("/items", {"page": 1}).json() == {"page": "1"}
        ahead.send("/items", {"page": 2})
        release.set()
        assert ahead.get("/items", {"page": 2}).json() == {"page": "2"}
        ahead.send("/items", {"page": 3})
        assert ahead.get("/items", {"page": 30}).json() == {"page": "30"}  # not the one sent
        ahead.send("/items", {"page": 4})
        with pytest.raises(FatalAPIError):
            ahead.get("/items", {"page": 4})
    assert seen == ["1", "2", "3", "30", "4"]
    assert client.stats.requests == 5
