"""The published JSON Schemas (schemas/json) match the models: producers read these files."""

import json
from pathlib import Path

import pytest

from agents.cli import main

PUBLISHED = Path(__file__).resolve().parents[2] / "schemas" / "json"


@pytest.mark.parametrize("name", ["transaction-event", "onboarding-event", "alert",
                                  "dead-letter", "risk-change", "rule-set",
                                  "address-intel", "alert-decision"])
def test_published_schema_is_current(tmp_path, name, capsys):
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    fresh = json.loads((tmp_path / f"{name}.schema.json").read_text())
    published = json.loads((PUBLISHED / f"{name}.schema.json").read_text())
    assert fresh == published, f"run: amlstream schemas --out schemas/json ({name} changed)"
