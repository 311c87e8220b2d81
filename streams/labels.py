"""Ground-truth labels per customer, for evaluating alerts: a CSV ``customer_id,label[,typology]``.

A label is ``suspicious`` or ``normal``; ``1``/``0``, ``true``/``false`` and ``yes``/``no`` (any
case) are read as the same, since labelled data sets often use them. Anything else is an error
naming the file and line, as is a customer labelled twice.
"""

import csv
from pathlib import Path

SUSPICIOUS = "suspicious"
NORMAL = "normal"
_WORDS = {"suspicious": SUSPICIOUS, "1": SUSPICIOUS, "true": SUSPICIOUS, "yes": SUSPICIOUS,
          "normal": NORMAL, "0": NORMAL, "false": NORMAL, "no": NORMAL}

Label = tuple[str, str | None]
"""(``suspicious`` or ``normal``, typology or None)."""


class LabelError(ValueError):
    """A labels file that cannot be used; the message names the file and line."""


def parse_label(text: str) -> str | None:
    """``suspicious``, ``normal``, or None for a word that is neither."""
    return _WORDS.get(text.strip().lower())


def read_labels(path: Path) -> dict[str, Label]:
    """Customer id -> (label, typology or None) from a CSV with a header line."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path}: cannot read labels: {exc}") from None
    if not rows or [name.strip() for name in rows[0][:2]] != ["customer_id", "label"]:
        raise LabelError(f"{path}: the header must be customer_id,label[,typology]")
    with_typology = len(rows[0]) > 2 and rows[0][2].strip() == "typology"
    labels: dict[str, Label] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        customer = row[0].strip()
        label = parse_label(row[1]) if len(row) > 1 else None
        if not customer or label is None:
            raise LabelError(f"{path} line {line}: expected customer_id and a label "
                             f"(suspicious/normal, 1/0, true/false, yes/no)")
        if customer in labels:
            raise LabelError(f"{path} line {line}: customer {customer!r} is labelled twice")
        typology = row[2].strip() if with_typology and len(row) > 2 else ""
        labels[customer] = (label, typology or None)
    return labels
