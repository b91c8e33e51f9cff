"""Random draws value for value as ``random.Random`` makes them, without its call layers.

Building a big world draws millions of numbers; ``randint``, ``choice``, ``choices`` and
``sample`` of the standard library cost several Python calls each. ``Draws`` makes the same
``getrandbits``/``random`` calls in the same order (CPython 3.10+), so a world built with it is
the world the standard library would give for the seed, a few times faster.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from itertools import accumulate
from typing import Any


class Draws:
    """``randint``/``choice``/``sample``/``randrange``/``random`` of one ``random.Random``,
    drawing exactly what the standard library draws (CPython 3.10+ ``_randbelow``)."""

    __slots__ = ("bits", "random")

    def __init__(self, rng: random.Random):
        self.bits = rng.getrandbits
        self.random = rng.random

    def below(self, n: int) -> int:
        k = n.bit_length()
        bits = self.bits
        r = bits(k)
        while r >= n:
            r = bits(k)
        return r

    def randint(self, a: int, b: int) -> int:
        n = b - a + 1
        k = n.bit_length()
        bits = self.bits
        r = bits(k)
        while r >= n:
            r = bits(k)
        return a + r

    def randrange(self, n: int) -> int:
        return self.below(n)

    def choice(self, seq: Any) -> Any:
        return seq[self.below(len(seq))]

    def sample(self, population: list[Any], k: int) -> list[Any]:
        """``random.sample`` for the pool case (population no larger than its set size,
        as every list sampled here is)."""
        n = len(population)
        if n > _setsize(k):
            raise ValueError("Draws.sample: population too large for the pool method")
        pool = list(population)
        out = [None] * k
        below = self.below
        for i in range(k):
            j = below(n - i)
            out[i] = pool[j]
            pool[j] = pool[n - i - 1]
        return out

    def weighted(self, population: list[Any], cum_weights: list[float]) -> Any:
        """``choices(population, cum_weights=cum_weights)[0]`` (see ``cumulative``)."""
        return population[
            bisect_right(
                cum_weights, self.random() * (cum_weights[-1] + 0.0), 0, len(population) - 1
            )
        ]


def cumulative(weights: list[float]) -> list[float]:
    """The cumulative weights ``random.choices`` makes of ``weights`` on every call."""
    return list(accumulate(weights))


def _setsize(k: int) -> int:
    size = 21
    if k > 5:
        size += 4 ** math.ceil(math.log(k * 3, 4))
    return size
