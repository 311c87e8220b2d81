"""Address intelligence: listings of addresses (sanctioned, mixer, a provider's risk score,
known services) that can change while the worker runs (the ``address-intel`` topic).

``Listing`` is one entry; ``IntelIndex`` answers which listings an address has now. The rule
file's lists (``config/lists``) stay the default seed; a match in either counts
(``listed_lists``).
"""

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from schemas.intel import AddressIntel
from streams.reference_lists import canonical_address

if TYPE_CHECKING:
    from streams.ruleset import CompiledRules

LISTS = ("sanctions", "mixer", "chain_risk", "service")
MAX_ENTRIES_DEFAULT = 2_000_000
"""Listings an index holds at most (``AMLSTREAM_INTEL_MAX_ENTRIES``), ~330 B each."""
KEY_SHOWN = 80
"""Characters of a message key an error message shows (keys are short; junk may not be)."""


class IntelError(ValueError):
    """An entry that cannot be used. ``reason`` is a short code for the metric's label:
    ``invalid_key``, ``invalid_value``, ``key_mismatch`` or ``index_full``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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


def _shared(text: str | None) -> str | None:
    """One string object for the many listings that name the same chain, entity, source."""
    return None if text is None else sys.intern(text)


def to_listing(entry: AddressIntel) -> Listing:
    """The listing of a validated entry, its address in canonical form."""
    return Listing(list=entry.list.value, address=canonical_address(entry.address),
                   listed_at_s=int(entry.listed_at.timestamp()), chain=_shared(entry.chain),
                   entity=_shared(entry.entity), category=_shared(entry.category),
                   risk_score=entry.risk_score, source=_shared(entry.source),
                   reference=entry.reference)


def _shown(key: bytes | str) -> str:
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    return repr(text if len(text) <= KEY_SHOWN else text[:KEY_SHOWN] + "...")


def parse_key(key: bytes | None) -> tuple[str, str]:
    """``(list, canonical address)`` of a message key ``<list>:<canonical address>``."""
    if key is None:
        raise IntelError("invalid_key", "an entry without a key (expected <list>:<address>)")
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise IntelError("invalid_key", f"key {_shown(key)} is not UTF-8") from None
    list_name, separator, address = text.partition(":")
    if not separator or list_name not in LISTS:
        raise IntelError("invalid_key", f"key {_shown(key)} is not <list>:<address> with a "
                         f"list among {', '.join(LISTS)}")
    if not address or address.strip() != address or canonical_address(address) != address:
        raise IntelError("invalid_key", f"key {_shown(key)}: the address must be in canonical "
                         "form (0x-hex and bech32 lower-case, no spaces)")
    return list_name, address


def parse_listing(key: bytes | None, value: bytes | None) -> tuple[str, Listing | None]:
    """The key and listing of one message of the topic; a null value (a tombstone, the entry
    removed) gives None. Raises ``IntelError`` saying what is wrong."""
    list_name, address = parse_key(key)
    text_key = f"{list_name}:{address}"
    if value is None:
        return text_key, None
    try:
        entry = AddressIntel.model_validate_json(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False))
        raise IntelError("invalid_value", f"entry {_shown(text_key)}: {problems}") from None
    listing = to_listing(entry)
    if listing.key != text_key:
        raise IntelError("key_mismatch", f"entry {_shown(text_key)} holds a listing of "
                         f"{_shown(listing.key)}: the key must be <list>:<canonical address> "
                         "of the value")
    return text_key, listing


class IntelIndex:
    """The listings in force: canonical address -> its listing (or, on several lists, a dict
    list -> listing), at most ``max_entries`` listings (a new one beyond is refused,
    ``IntelError`` ``index_full``, counted in ``refused``; replacing or removing one still
    works). About 330 B a listing (a 42-character address, its own reference; tracemalloc
    over 100,000): 2,000,000 listings take ~650 MB."""

    def __init__(self, max_entries: int = MAX_ENTRIES_DEFAULT) -> None:
        self.max_entries = max_entries
        self.refused = 0
        """New listings refused because the index was full."""
        self._by_address: dict[str, Listing | dict[str, Listing]] = {}
        self._count = 0

    def __len__(self) -> int:
        """Listings held (an address on two lists counts twice)."""
        return self._count

    def _entries(self, canonical: str) -> dict[str, Listing]:
        held = self._by_address.get(canonical)
        if held is None:
            return {}
        return {held.list: held} if isinstance(held, Listing) else held

    def apply(self, key: str, listing: Listing | None) -> bool:
        """Put ``listing`` under ``key`` (``<list>:<canonical address>``), or remove the entry
        when it is None; True if that changed the index (new, different or removed)."""
        list_name, _, address = key.partition(":")
        entries = self._entries(address)
        known = entries.get(list_name)
        if listing is None:
            if known is None:
                return False
            self._count -= 1
            self._keep(address, {name: held for name, held in entries.items()
                                 if name != list_name})
            return True
        if listing.key != key:
            raise IntelError("key_mismatch", f"listing of {_shown(listing.key)} put under "
                             f"{_shown(key)}")
        if known == listing:
            return False
        if known is None:
            if self._count >= self.max_entries:
                self.refused += 1
                raise IntelError("index_full", f"entry {_shown(key)} refused: the index holds "
                                 f"its maximum of {self.max_entries} listings "
                                 "(AMLSTREAM_INTEL_MAX_ENTRIES)")
            self._count += 1
        self._keep(listing.address, {**entries, list_name: listing})
        return True

    def _keep(self, canonical: str, entries: dict[str, Listing]) -> None:
        """Hold ``entries`` for the address: nothing, the one listing itself, or the dict."""
        if not entries:
            del self._by_address[canonical]
        elif len(entries) == 1:
            [self._by_address[canonical]] = entries.values()
        else:
            self._by_address[canonical] = entries

    def match(self, address: str | None) -> list[Listing]:
        """The listings of ``address`` (any spelling), in the order of ``LISTS``."""
        if not address or not self._by_address:
            return []
        entries = self._entries(canonical_address(address))
        return [entries[name] for name in LISTS if name in entries]

    def get(self, address: str | None, list_name: str) -> Listing | None:
        """``address``'s listing on ``list_name``, if any."""
        if not address or not self._by_address:
            return None
        held = self._by_address.get(canonical_address(address))
        if isinstance(held, Listing):
            return held if held.list == list_name else None
        return held.get(list_name) if held is not None else None


def high_risk(listing: Listing | None, band: int) -> bool:
    """A ``chain_risk`` listing whose score is at or above ``band``."""
    return (listing is not None and listing.risk_score is not None
            and listing.risk_score >= band)


def listed_lists(cp_address: str | None, rules: "CompiledRules") -> tuple[str, ...]:
    """The lists ``cp_address`` is on now, sorted: the rule file's sanctioned and mixer lists,
    and the index (``chain_risk`` only at or above ``network.chain_risk_high_from``)."""
    if not cp_address:
        return ()
    found: set[str] = set()
    if rules.sanctioned.match(cp_address) is not None:
        found.add("sanctions")
    if rules.mixers.match(cp_address) is not None:
        found.add("mixer")
    band = rules.config.network.chain_risk_high_from
    for listing in rules.intel.match(cp_address):
        if listing.list != "chain_risk" or high_risk(listing, band):
            found.add(listing.list)
    return tuple(sorted(found))
