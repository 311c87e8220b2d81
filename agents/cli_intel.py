"""``amlstream intel publish | show | remove``: address intelligence for running workers.

``publish FILE`` reads a CSV file with a header row (the entry's field names as columns) or
JSON Lines (one entry per line), validates every entry, publishes the valid ones and names
each invalid one with its line and reason. ``show`` prints the entries in force as JSON Lines
(which ``publish`` reads back). ``remove LIST ADDRESS`` publishes a tombstone.
"""

import asyncio
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import ValidationError

from agents import intel_feed
from agents.cli_common import Arg, Group, broker_option, kafka_settings
from agents.settings import Settings
from schemas.intel import AddressIntel
from streams.intel import LISTS, IntelError, parse_listing, to_listing
from streams.reference_lists import canonical_address

Record = tuple[bytes, bytes | None]
INTEGER_COLUMNS = ("schema_version", "risk_score")
"""CSV cells read as integers when they are one (the wire format wants JSON integers)."""


def _csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(newline="", encoding="utf-8") as rows:
        reader = csv.DictReader(rows)
        for row in reader:
            document: dict[str, Any] = {}
            for name, cell in row.items():
                if name is None or cell is None or not cell.strip():
                    continue  # a surplus cell, a missing one, or an empty one: absent
                value: Any = cell.strip()
                if name in INTEGER_COLUMNS and value.lstrip("-").isdigit():
                    value = int(value)
                document[name.strip()] = value
            yield reader.line_num, document


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, ValueError(f"not JSON: {exc}")


def _is_jsonl(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    if path.suffix.lower() == ".csv":
        return False
    with path.open("rb") as head:
        return head.read(4096).lstrip().startswith(b"{")


def read_entries(path: Path) -> tuple[list[Record], list[str]]:
    """The records to publish (key, value) of the file's valid entries, and a line
    ``line N: reason`` per invalid one."""
    rows = _jsonl_rows(path) if _is_jsonl(path) else _csv_rows(path)
    records: list[Record] = []
    rejected: list[str] = []
    for number, document in rows:
        if isinstance(document, Exception):
            rejected.append(f"line {number}: {document}")
            continue
        try:
            entry = AddressIntel.model_validate(document)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False))
            rejected.append(f"line {number}: {problems}")
            continue
        value = entry.model_dump_json(exclude_none=True).encode()
        records.append((to_listing(entry).key.encode(), value))
    return records, rejected


@click.group(cls=Group, short_help="Publish, show or remove address intelligence.",
             help="Address intelligence (sanctioned, mixer, service and risky addresses) on "
             "the address-intel topic, which running workers follow.")
def intel() -> None:
    pass


@intel.command("publish", short_help="Validate a CSV or JSON Lines file; publish the valid.",
               help="Validate a CSV file (with a header row of the field names) or JSON Lines "
               "file (one entry per line) and publish its valid entries; each invalid one is "
               "named with its line and reason (exit 1).")
@click.argument("file", cls=Arg, type=click.Path(path_type=Path),
                help="The entries: CSV with a header row, or JSON Lines.")
@broker_option
def publish_file(file: Path) -> int:
    try:
        records, rejected = read_entries(file)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        print(f"cannot read {file}: {exc}", file=sys.stderr)
        return 1
    for reason in rejected:
        print(f"rejected {reason}", file=sys.stderr)
    settings = kafka_settings() if records else Settings()
    published = asyncio.run(intel_feed.publish(settings, records)) if records else 0
    print(f"published {published} entries to {settings.address_intel_topic}, "
          f"rejected {len(rejected)}")
    return 1 if rejected else 0


def in_force(records: list[tuple[bytes | None, bytes | None]]) -> tuple[dict[str, bytes], int]:
    """The newest valid value per key (removed keys left out), and how many messages are
    invalid."""
    entries: dict[str, bytes] = {}
    invalid = 0
    for key, value in records:
        try:
            text_key, listing = parse_listing(key, value)
        except IntelError:
            invalid += 1
            continue
        if listing is None:
            entries.pop(text_key, None)
        else:
            assert value is not None
            entries[text_key] = value
    return entries, invalid


@intel.command(short_help="Print the entries in force as JSON Lines.",
               help="Print the entries in force on the address-intel topic as JSON Lines "
               "(which publish reads back); a count on stderr.")
@click.option("--address", default=None, help="Only this address's entries.")
@broker_option
def show(address: str | None) -> int:
    settings = kafka_settings()
    entries, invalid = in_force(asyncio.run(intel_feed.read_all(settings)))
    wanted = canonical_address(address.strip()) if address else None
    shown = 0
    for key in sorted(entries):
        if wanted is None or key.partition(":")[2] == wanted:
            print(entries[key].decode())
            shown += 1
    print(f"# {shown} of {len(entries)} entries in force on {settings.address_intel_topic}"
          + (f"; {invalid} invalid messages ignored" if invalid else ""), file=sys.stderr)
    return 0


@intel.command(short_help="Remove an address from a list (a tombstone).",
               help="Remove an address from a list: publish a tombstone for its entry.")
@click.argument("list_name", metavar="LIST", cls=Arg, type=click.Choice(LISTS),
                help=f"The list: {', '.join(LISTS)}.")
@click.argument("address", cls=Arg, help="The address, as listed (any letter case).")
@broker_option
def remove(list_name: str, address: str) -> int:
    address = address.strip()
    if not address:
        print("the address is empty", file=sys.stderr)
        return 1
    key = f"{list_name}:{canonical_address(address)}"
    settings = kafka_settings()
    asyncio.run(intel_feed.publish(settings, [(key.encode(), None)]))
    print(f"removed {key} (tombstone published to {settings.address_intel_topic})")
    return 0
