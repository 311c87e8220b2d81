"""USD in the core is an ``int`` number of cents: exact, cheap to add and compare.

Amounts enter as ``Decimal`` (the wire format) and are rounded half-even to the cent once, at
the edge; alerts turn cents back into ``Decimal`` dollars.
"""

from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

_CENT = Decimal("0.01")


def to_cents(usd: Decimal) -> int:
    return int(usd.quantize(_CENT, rounding=ROUND_HALF_EVEN).scaleb(2))


@lru_cache(maxsize=1024)
def setting_cents(usd: Decimal) -> int:
    """``to_cents`` of a configured amount (a rule's threshold): the same few values for every
    event, so each is worked out once."""
    return to_cents(usd)


@lru_cache(maxsize=1024)
def setting_ratio(value: Decimal) -> tuple[int, int]:
    """A configured multiplier as ``(numerator, denominator)`` integers, worked out once: a
    rule then checks ``x <= y * value`` exactly as ``x * denominator <= y * numerator``, in
    integers, with no ``Decimal`` arithmetic per event."""
    return value.as_integer_ratio()


def to_usd(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)
