"""Address intelligence: listings of addresses (sanctioned, mixer, a provider's risk score,
known services) that can change while the worker runs (the ``address-intel`` topic).

``Listing`` is one entry; ``IntelIndex`` answers which listings an address has now. The rule
file's lists (``config/lists``) stay the default seed; a match in either counts.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.ruleset import CompiledRules

LISTS = ("sanctions", "mixer", "chain_risk", "service")


@dataclass(frozen=True, slots=True)
class Listing:
    list: str
    """``sanctions``, ``mixer``, ``chain_risk`` (a provider's score) or ``service`` (a known
    exchange or merchant wallet: never a collection or distribution point)."""
    address: str
    """Canonical (``streams.reference_lists.canonical_address``)."""
    listed_at_s: int
    chain: str | None = None
    entity: str | None = None
    category: str | None = None
    risk_score: int | None = None
    source: str | None = None
    reference: str | None = None

    @property
    def key(self) -> str:
        """The topic's message key: one entry per list and address."""
        return f"{self.list}:{self.address}"


def listed_lists(cp_address: str | None, rules: "CompiledRules") -> tuple[str, ...]:
    """The lists an address is on now (the rule file's lists), sorted."""
    if not cp_address:
        return ()
    lists = []
    if rules.mixers.match(cp_address) is not None:
        lists.append("mixer")
    if rules.sanctioned.match(cp_address) is not None:
        lists.append("sanctions")
    return tuple(lists)
