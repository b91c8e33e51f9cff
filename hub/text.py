"""Numbers and words for people: the one rounding rule and the shared formatters.

Every text the hub shows a person (drivers, task bodies, CLI tables, pushed fields) formats
money, counts, hours and shares through these helpers, so a number reads the same wherever it
appears: ``money(4500)`` → ``"$4,500"``, ``plural(2, "ticket")`` → ``"2 tickets"``,
``hours(3.25)`` → ``"3.3 h"``, ``pct(0.4444)`` → ``"44%"``. Rounding is half up on the value's
decimal text (``round_half_up``), never Python's banker's rounding.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

_ONE = Decimal(1)


def round_half_up(value: float | int | Decimal | str, places: int = 0) -> Any:
    """The one rounding rule of the hub: half up (``69.5`` → 70, ``69.49`` → 69).

    Works on the value's decimal text (``repr`` of a float), not its binary approximation, so
    ``2.675`` rounds to ``2.68``. Returns an ``int`` for ``places=0``, else a ``float``.
    """
    if isinstance(value, float) and places == 0:
        near = math.floor(value + 0.5)
        # Only a value within a hair of .5 needs its decimal text to decide.
        if abs(value - near + 0.5) > 1e-9 and abs(value - near - 0.5) > 1e-9:
            return int(near)
    number = (
        value
        if isinstance(value, Decimal)
        else Decimal(repr(value) if isinstance(value, float) else str(value))
    )
    if places == 0:
        return int(number.quantize(_ONE, rounding=ROUND_HALF_UP))
    return float(number.quantize(_ONE.scaleb(-places), rounding=ROUND_HALF_UP))


def plural(count: float, singular: str, many: str | None = None) -> str:
    """``plural(2, "failed payment")`` → ``"2 failed payments"``; ``plural(1, "task")`` → ``"1 task"``."""
    shown = int(count) if float(count).is_integer() else count
    word = singular if shown == 1 else (many or singular + "s")
    return f"{shown} {word}"


def hours(value: float) -> str:
    """``52.0`` → ``"52 h"``, ``3.25`` → ``"3.3 h"``."""
    return f"{round_half_up(value)} h" if value >= 10 else f"{round_half_up(value, 1):g} h"


def pct(ratio: float) -> str:
    """``0.4444`` → ``"44%"``."""
    return f"{round_half_up(ratio * 100)}%"


def money(amount: Any, *, missing: str = "no amount", whole: bool = False) -> str:
    """An amount in the account currency's major unit: ``4500`` → ``"$4,500"``,
    ``12.5`` → ``"$12.50"``, ``1234.567`` → ``"$1,234.57"``; None or text that is not a
    number → ``missing``. ``whole`` rounds to whole units (tables: ``"$1,235"``). Minor units
    (cents) are converted by the caller (÷ 100). The one money formatter of the hub."""
    if amount is None or isinstance(amount, bool):
        return missing
    try:
        number = Decimal(repr(amount) if isinstance(amount, float) else str(amount))
    except ArithmeticError:
        return missing
    if not number.is_finite():
        return missing
    cents = number.quantize(Decimal("1" if whole else "0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    if cents == cents.to_integral_value():
        return f"{sign}${int(cents):,}"
    return f"{sign}${cents:,.2f}"


def humanize(code: Any) -> str:
    """A machine code in words: ``missing_features`` → ``missing features``; "" stays ""."""
    text = str(code or "").strip()
    if not text:
        return ""
    return text.replace("_", " ").replace("-", " ").strip()


__all__ = ["hours", "humanize", "money", "pct", "plural", "round_half_up"]
