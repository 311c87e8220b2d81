"""Turn an IBM AMLSim sample (``nodes.csv``, ``transactions.csv``) into amlstream events and labels.

Pure: no clock, no randomness, no Kafka. The mapping:

- every account (node) is a customer ``amlsim-<nodeid>``: ``registered`` (country of residence
  and nationality ``country``) and ``kyc_verified`` (``kyc_tier``), both at ``start``;
- every transfer row is a withdrawal (``out``) of the sender and a deposit (``in``) of the
  receiver, fiat USD (``amount`` = ``amount_usd`` = ``value``, read as a Decimal), counterparty
  ``customer_id`` and address = the other customer's id (both accounts are our customers: an
  internal transfer), type ``counterparty_type`` (``other``: an account at a bank, neither
  unhosted wallet nor mixer), country ``country``;
- time step *n* covers [start + n x step_s, start + (n + 1) x step_s); AMLSim gives no time
  within a step, so the rows of a step are spread evenly over it in file order (row k of a
  step's n rows at k x step_s // n seconds into it);
- labels: ``isFraud`` 1 -> ``suspicious``, else ``normal``; the typology from a column named
  ``typology_column`` when ``nodes.csv`` has one (the 20K_fanin200 sample has none).

Events come onboarding first, then transactions in event-time order (a tie in file order, the
sender's withdrawal before the receiver's deposit).
"""

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from streams.labels import NORMAL, SUSPICIOUS, Label, parse_label

NODES_FILE = "nodes.csv"
TRANSFERS_FILE = "transactions.csv"
ONBOARDING = "onboarding"
TRANSACTIONS = "transactions"
CUSTOMER_PREFIX = "amlsim-"


class AmlsimError(ValueError):
    """A sample that cannot be read; the message names the file (and line)."""


@dataclass(frozen=True)
class AmlsimOptions:
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    step_s: int = 86_400
    kyc_tier: int = 1
    country: str = "US"
    counterparty_type: str = "other"
    typology_column: str = "typology"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise AmlsimError("the start time needs a timezone")
        if self.step_s < 1:
            raise AmlsimError("a time step must be at least 1 second")
        if not 0 <= self.kyc_tier <= 3:
            raise AmlsimError("the KYC tier must be 0 to 3")
        if not (len(self.country) == 2 and self.country.isascii() and self.country.isalpha()):
            raise AmlsimError("the country must be an ISO-3166 alpha-2 code, e.g. US")


@dataclass(frozen=True, slots=True)
class Account:
    node_id: str
    suspicious: bool
    typology: str | None


@dataclass(frozen=True, slots=True)
class TransferRow:
    line: int
    """Line number in transactions.csv (the header is line 1)."""
    source: str
    target: str
    value_usd: Decimal
    step: int


@dataclass(frozen=True)
class AmlsimSample:
    accounts: list[Account]
    transfers: list[TransferRow]
    """Sorted by step, then line."""

    def labels(self) -> dict[str, Label]:
        return {customer_id(a.node_id): (SUSPICIOUS if a.suspicious else NORMAL, a.typology)
                for a in self.accounts}


def customer_id(node_id: str) -> str:
    return f"{CUSTOMER_PREFIX}{node_id}"


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            missing = [name for name in required if name not in (reader.fieldnames or ())]
            if missing:
                raise AmlsimError(f"{path}: missing column(s) {', '.join(missing)}")
            for row in reader:
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AmlsimError(f"{path}: cannot read: {exc}") from None


def _accounts(path: Path, typology_column: str) -> list[Account]:
    accounts = []
    for line, row in _rows(path, ("nodeid", "isFraud")):
        node, label = (row["nodeid"] or "").strip(), parse_label(row["isFraud"] or "")
        if not node or label is None:
            raise AmlsimError(f"{path} line {line}: expected a nodeid and isFraud 0 or 1")
        typology = (row.get(typology_column) or "").strip() or None
        accounts.append(Account(node, label == SUSPICIOUS, typology))
    return accounts


def _transfer(path: Path, line: int, row: dict[str, Any], known: set[str]) -> TransferRow:
    try:
        value = Decimal((row["value"] or "").strip())
        step = int(row["time"] or "")
    except (InvalidOperation, ValueError):
        raise AmlsimError(f"{path} line {line}: value must be a decimal number and time "
                          "an integer step") from None
    if not value.is_finite() or value <= 0 or step < 0:
        raise AmlsimError(f"{path} line {line}: value must be positive and time not negative")
    source, target = (row["sourceNodeId"] or "").strip(), (row["targetNodeId"] or "").strip()
    for node in (source, target):
        if node not in known:
            raise AmlsimError(f"{path} line {line}: account {node!r} is not in {NODES_FILE}")
    return TransferRow(line, source, target, value, step)


def read_sample(directory: Path, typology_column: str = "typology") -> AmlsimSample:
    """Read and check both files; raises ``AmlsimError`` naming the file and line."""
    if not directory.is_dir():
        raise AmlsimError(f"{directory}: not a directory")
    accounts = _accounts(directory / NODES_FILE, typology_column)
    known = {a.node_id for a in accounts}
    path = directory / TRANSFERS_FILE
    transfers = [_transfer(path, line, row, known)
                 for line, row in _rows(path, ("sourceNodeId", "targetNodeId", "value", "time"))]
    transfers.sort(key=lambda t: (t.step, t.line))
    return AmlsimSample(accounts, transfers)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _message(topic: str, event: dict[str, Any]) -> tuple[str, bytes, bytes]:
    return topic, event["customer_id"].encode(), orjson.dumps(event)


def _onboarding(account: Account, options: AmlsimOptions) -> Iterator[tuple[str, bytes, bytes]]:
    customer, at = customer_id(account.node_id), _iso(options.start)
    yield _message(ONBOARDING, {
        "event_id": f"{customer}-registered", "customer_id": customer, "occurred_at": at,
        "type": "registered", "country_of_residence": options.country,
        "nationality": options.country})
    yield _message(ONBOARDING, {
        "event_id": f"{customer}-kyc-verified", "customer_id": customer, "occurred_at": at,
        "type": "kyc_verified", "kyc_tier": options.kyc_tier})


def _transfer_events(row: TransferRow, at: datetime,
                     options: AmlsimOptions) -> Iterator[tuple[str, bytes, bytes]]:
    amount = format(row.value_usd, "f")
    for direction, own, other in (("out", row.source, row.target), ("in", row.target, row.source)):
        customer = customer_id(own)
        yield _message(TRANSACTIONS, {
            "event_id": f"amlsim-tx{row.line}-{direction}", "customer_id": customer,
            "occurred_at": _iso(at), "direction": direction, "asset": "USD",
            "amount": amount, "amount_usd": amount, "channel": "fiat",
            "counterparty": {"address": customer_id(other), "type": options.counterparty_type,
                             "country": options.country, "customer_id": customer_id(other)}})


def events(sample: AmlsimSample,
           options: AmlsimOptions) -> Iterator[tuple[str, bytes, bytes]]:
    """(topic kind, key, raw JSON value) of every event, in the order described above."""
    for account in sample.accounts:
        yield from _onboarding(account, options)
    per_step = Counter(t.step for t in sample.transfers)
    index, step = 0, None
    for row in sample.transfers:
        index = index + 1 if row.step == step else 0
        step = row.step
        offset_s = index * options.step_s // per_step[step]
        at = options.start + timedelta(seconds=step * options.step_s + offset_s)
        yield from _transfer_events(row, at, options)
