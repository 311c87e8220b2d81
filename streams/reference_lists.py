"""Sanctioned and mixer addresses, FATF jurisdictions: loaded from CSV files named in config."""

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ListedAddress:
    address: str
    list_name: str
    entity: str
    detail: str


_CASE_INSENSITIVE_PREFIXES = ("0x", "bc1", "tb1", "ltc1")
"""0x-hex (EVM) and bech32 addresses: their letter case carries no meaning."""


def _is_case_insensitive_format(address: str) -> bool:
    return address.lower().startswith(_CASE_INSENSITIVE_PREFIXES)


def canonical_address(address: str) -> str:
    """The form two spellings of one address share: lower case where case means nothing."""
    lowered = address.lower()
    return lowered if lowered.startswith(_CASE_INSENSITIVE_PREFIXES) else address


class AddressList:
    """Exact address matching with per-format case rules.

    0x-hex (EVM) and bech32 addresses are case-insensitive (an EVM checksum case is only a
    presentation), so they are compared lower-cased. An address listed for several entities
    names them all. Base58 and other formats are case-sensitive and compared exactly,
    except entries whose source kept only a lower-cased form: those match case-insensitively,
    which is the most exact match the source allows.
    """

    def __init__(self) -> None:
        self._exact: dict[str, ListedAddress] = {}
        self._folded: dict[str, ListedAddress] = {}

    def add(self, entry: ListedAddress, case_known: bool) -> None:
        if case_known and not _is_case_insensitive_format(entry.address):
            index, key = self._exact, entry.address
        else:
            index, key = self._folded, entry.address.lower()
        known = index.get(key)
        if known is not None and known.entity != entry.entity:
            entry = ListedAddress(entry.address, entry.list_name,
                                  f"{known.entity}; {entry.entity}",
                                  f"{known.detail} | {entry.detail}")
        index[key] = entry

    def match(self, address: str | None) -> ListedAddress | None:
        if not address:
            return None
        return self._exact.get(address) or self._folded.get(address.lower())

    def __len__(self) -> int:
        return len(self._exact) + len(self._folded)


def load_sanctioned_addresses(path: Path) -> AddressList:
    listed = AddressList()
    with path.open(newline="", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            entry = ListedAddress(
                address=row["address"].strip(),
                list_name="OFAC SDN",
                entity=row["sdn_entity"],
                detail=f"asset {row['asset']}; programs {row['programs']}; uid {row['sdn_uid']}",
            )
            listed.add(entry, case_known=row["case_preserved"] == "yes")
    return listed


def load_mixer_addresses(path: Path) -> AddressList:
    listed = AddressList()
    with path.open(newline="", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            entry = ListedAddress(
                address=row["address"].strip(),
                list_name="mixers",
                entity=row["service"],
                detail=f"{row['chain']}: {row['note']}",
            )
            listed.add(entry, case_known=True)
    return listed


@dataclass(frozen=True)
class JurisdictionLists:
    """FATF lists by ISO-3166 alpha-2 code: ``black`` (call for action) and ``grey``."""

    black: frozenset[str]
    grey: frozenset[str]

    @cached_property
    def listed(self) -> frozenset[str]:
        """Every code on either list."""
        return self.black | self.grey

    def list_of(self, country: str | None) -> str | None:
        if country is None:
            return None
        if country in self.black:
            return "black"
        if country in self.grey:
            return "grey"
        return None


def load_fatf_lists(path: Path) -> JurisdictionLists:
    black: set[str] = set()
    grey: set[str] = set()
    with path.open(newline="", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            {"black": black, "grey": grey}.get(row["list"], set()).add(row["iso2"].strip().upper())
    return JurisdictionLists(black=frozenset(black), grey=frozenset(grey))
