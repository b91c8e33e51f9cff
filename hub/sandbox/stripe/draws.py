"""Stripe fake: the seeded history's timing draws, as pure functions of (seed, company, purpose).

The moments that decide how late a company's newest records are (a churned customer's
cancellation, an expanding one's seat increase, when an emailed invoice gets paid) are drawn
here instead of from the company's random stream, so seeding can bound every company's
newest record (``lazy._bounds``) without generating its history, and generating it later
gives the same moments.
"""

from __future__ import annotations

from typing import Any

from hub.sandbox.stripe.constants import DAY, DAYS_UNTIL_DUE, HOUR
from hub.sandbox.stripe.records import _boundary, _period_index

_M64 = (1 << 64) - 1

# purposes (the salt of each draw)
_CHURN_NOW, _CHURN_DAYS, _CHURN_SECS, _CHURN_WHICH, _CHURN_ASKED = 1, 2, 3, 4, 5
_SEATS_DAYS, _SEATS_SECS = 6, 7
_PAY_DAYS, _PAY_SECS, _LATE_DAYS, _LATE_SECS = 8, 9, 10, 11


def unit(seed: int, key: int, salt: int) -> float:
    """A uniform float in [0, 1) (splitmix64 of the three numbers)."""
    z = (
        seed * 0x9E3779B97F4A7C15 + (key + 1) * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB
    ) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return (z ^ (z >> 31)) / 18446744073709551616.0


def rint(seed: int, key: int, salt: int, low: int, high: int) -> int:
    """An int in [low, high], like ``random.randint``."""
    return low + int(unit(seed, key, salt) * (high - low + 1))


def churn(
    seed: int, key: int, anchor: tuple[int, int, int, int], k_now: int, now: int
) -> tuple[int, bool, int, int]:
    """A churned company's cancellation: (asked at, right away?, last period billed, ends at)."""
    if unit(seed, key, _CHURN_NOW) < 0.5:  # cancelled right away
        end = (
            now
            - rint(seed, key, _CHURN_DAYS, 2, 75) * DAY
            - rint(seed, key, _CHURN_SECS, 0, DAY - 1)
        )
        end = max(end, _boundary(anchor, 1) + DAY)
        return end, True, _period_index(anchor, end), end
    # cancelled at the end of a period
    j = k_now if unit(seed, key, _CHURN_WHICH) < 0.5 and k_now >= 2 else max(1, k_now - 1)
    ends = _boundary(anchor, j)
    asked = max(
        _boundary(anchor, j - 1) + HOUR * 2, ends - rint(seed, key, _CHURN_ASKED, 1, 20) * DAY
    )
    return asked, False, j - 1, ends


def seats_at(seed: int, key: int, now: int) -> int:
    """When an expanding company's seat increase happened (3 to 29 days before ``now``)."""
    return (
        now - rint(seed, key, _SEATS_DAYS, 3, 28) * DAY - rint(seed, key, _SEATS_SECS, 0, DAY - 1)
    )


def invoice_paid_at(seed: int, key: int, created: int, late: bool) -> int:
    """When an emailed invoice created at ``created`` is paid: within 3 weeks of finalization,
    or (``late``) 2 to 12 days past its due date."""
    finalized = created + HOUR
    salt = created * 16
    if late:
        due = finalized + DAYS_UNTIL_DUE * DAY
        return (
            due
            + rint(seed, key, salt + _LATE_DAYS, 2, 12) * DAY
            + rint(seed, key, salt + _LATE_SECS, 0, DAY - 1)
        )
    return (
        finalized
        + rint(seed, key, salt + _PAY_DAYS, 2, 20) * DAY
        + rint(seed, key, salt + _PAY_SECS, 0, DAY - 1)
    )


def latest(candidates: Any, now: int, floor: int) -> int:
    """The latest of ``candidates`` not after ``now`` (``floor`` if none)."""
    best = floor
    for ts in candidates:
        if best < ts <= now:
            best = ts
    return best
