"""Shared fixtures for the unit tests of the Kafka-free core.

Everything runs on fixed, timezone-aware event times (never the clock): ``T0`` is midnight UTC,
so it is aligned to every bucket width and to the 1h and 24h cooldown periods. Transfers are
built as JSON on the wire and go through ``streams.intake.decode_transfer`` and
``streams.engine.apply``, the same path as the live worker.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from schemas.alerts import Alert
from schemas.decisions import AlertDecision
from schemas.events import OnboardingEvent
from streams.engine import Position, apply
from streams.intake import Transfer, decode_decision, decode_onboarding, decode_transfer
from streams.ruleset import CompiledRules, compile_rules, load_rules, parse_rule_set
from streams.state import CustomerState, Profile

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
RULES_FILE = CONFIG_DIR / "rules.yaml"
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.isoformat()


def when(offset: timedelta | datetime) -> datetime:
    """An event time: a datetime as is, a timedelta as an offset from ``T0``."""
    return offset if isinstance(offset, datetime) else T0 + offset


def transaction_payload(**changes: Any) -> dict[str, Any]:
    """A valid transaction event as a JSON-ready dict; ``changes`` override or add fields,
    and a value of ``None`` removes the field."""
    payload: dict[str, Any] = {
        "schema_version": 1,
        "event_id": "e-1",
        "customer_id": "c1",
        "occurred_at": iso(T0),
        "direction": "in",
        "asset": "USDT",
        "amount": "100",
        "amount_usd": "100.00",
        "channel": "crypto",
        "counterparty": {"type": "exchange"},
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` merged in, recursively; a ``None`` in the patch deletes."""
    merged = dict(base)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        elif isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = deep_merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def default_document() -> dict[str, Any]:
    """``config/rules.yaml`` as parsed YAML, before validation."""
    document: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return document


class Customer:
    """One customer's state, fed wire-format events through ``apply``."""

    def __init__(self, rules: CompiledRules, customer_id: str = "c1", *, tier: int = 1,
                 status: str = "verified", residence: str | None = None,
                 nationality: str | None = None) -> None:
        self.rules = rules
        self.customer_id = customer_id
        self.state = CustomerState(profile=Profile(
            kyc_status=status, kyc_tier=tier, country_of_residence=residence,
            nationality=nationality,
        ))
        self.sent = 0
        self.alerts: list[Alert] = []
        self.risk_changes: list[Any] = []

    def _next_id(self) -> str:
        self.sent += 1
        return f"{self.customer_id}-e{self.sent}"

    def decode(self, offset: timedelta | datetime, usd: str = "100.00", direction: str = "in",
               *, address: str | None = None, country: str | None = None,
               asset: str = "USDT", cp_type: str = "exchange") -> Transfer:
        counterparty: dict[str, Any] = {"type": cp_type}
        if address is not None:
            counterparty["address"] = address
        if country is not None:
            counterparty["country"] = country
        payload = transaction_payload(
            event_id=self._next_id(), customer_id=self.customer_id,
            occurred_at=iso(when(offset)), direction=direction, asset=asset,
            # amount must be > 0 even for a zero-USD transfer; amount_usd is what counts
            amount=usd if usd.strip("0.") else "1", amount_usd=usd, counterparty=counterparty,
        )
        return decode_transfer(self.customer_id.encode(), orjson.dumps(payload), self.rules)

    def transfer(self, offset: timedelta | datetime, usd: str = "100.00", direction: str = "in",
                 **counterparty: Any) -> list[Alert]:
        """Send one transfer; return the alerts it raised."""
        return self.apply(self.decode(offset, usd, direction, **counterparty))

    def transfers(self, offsets: list[timedelta], usd: str = "100.00",
                  directions: tuple[str, ...] = ("in",)) -> list[list[Alert]]:
        """Send one transfer per offset, cycling through ``directions``."""
        return [self.transfer(offset, usd, directions[n % len(directions)])
                for n, offset in enumerate(offsets)]

    def send(self, steps: list[tuple[Any, ...]]) -> list[set[str]]:
        """Send ``(offset, usd, direction)`` or ``(offset, usd, direction, address)`` steps;
        return the rule ids each one raised."""
        return [self.ids(self.transfer(offset, usd, direction, address=address))
                for offset, usd, direction, address in (
                    (*step, None) if len(step) == 3 else step for step in steps)]

    def onboarding(self, offset: timedelta | datetime, kind: str,
                   **fields: Any) -> OnboardingEvent:
        payload = {"event_id": self._next_id(), "customer_id": self.customer_id,
                   "occurred_at": iso(when(offset)), "type": kind, **fields}
        return decode_onboarding(self.customer_id.encode(), orjson.dumps(payload))

    def onboard(self, offset: timedelta | datetime, kind: str, **fields: Any) -> list[Alert]:
        """Send one onboarding event (it raises no alert)."""
        return self.apply(self.onboarding(offset, kind, **fields))

    def decision(self, offset: timedelta | datetime, alert: Alert, kind: str = "false_positive",
                 **fields: Any) -> AlertDecision:
        payload = {"event_id": self._next_id(), "customer_id": self.customer_id,
                   "occurred_at": iso(when(offset)), "alert_id": alert.alert_id,
                   "rule_id": alert.rule_id, "decision": kind, "decided_by": "analyst-7",
                   "reason": "known counterparty", **fields}
        return decode_decision(self.customer_id.encode(), orjson.dumps(payload))

    def decide(self, offset: timedelta | datetime, alert: Alert, kind: str = "false_positive",
               **fields: Any) -> None:
        """Record an analyst's decision on ``alert`` (it raises no alert)."""
        self.apply(self.decision(offset, alert, kind, **fields))

    def apply(self, event: Any, position: Position | None = None) -> list[Alert]:
        self.state, decisions = apply(self.state, event, self.rules, position)
        self.alerts.extend(decisions.alerts)
        self.risk_changes.extend(decisions.risk_changes)
        return decisions.alerts

    def fired(self) -> list[str]:
        """Rule ids of every alert so far, in order."""
        return [alert.rule_id for alert in self.alerts]

    @staticmethod
    def ids(alerts: list[Alert]) -> set[str]:
        """The rule ids of ``alerts``."""
        return {alert.rule_id for alert in alerts}


RISK_NEUTRAL = {"limit_multiplier": {"low": "1", "medium": "1", "high": "1"},
                "raise_severity_at": None}
"""The ``risk`` settings of the ``rules`` fixture. Rule tables test each rule alone: the risk
rating still runs, but here it neither tightens limits nor raises severities (test_risk.py
tests those effects)."""


@pytest.fixture(scope="session")
def default_rules() -> CompiledRules:
    """The default rule set, ``config/rules.yaml``, as shipped."""
    return load_rules(RULES_FILE)


@pytest.fixture(scope="session")
def rules(default_rules: CompiledRules) -> CompiledRules:
    """The default rule set with the risk rating's effects on rules switched off."""
    document = default_rules.config.model_dump(mode="json")
    document["risk"].update(RISK_NEUTRAL)  # not deep_merge: a None there deletes the setting
    return compile_rules(parse_rule_set(document), CONFIG_DIR)


@pytest.fixture(scope="session")
def customised(rules: CompiledRules) -> Callable[..., CompiledRules]:
    """Compile the (risk-neutral) default rule set with (nested) patches merged in order,
    validated like a rule file."""

    def build(*patches: dict[str, Any]) -> CompiledRules:
        document = rules.config.model_dump()
        for patch in patches:
            document = deep_merge(document, patch)
        return compile_rules(parse_rule_set(document), CONFIG_DIR)

    return build


@pytest.fixture
def customer(rules: CompiledRules) -> Callable[..., Customer]:
    """Factory for ``Customer``; the default rule set unless ``rules=`` is given."""

    def build(customer_id: str = "c1", *, rules: CompiledRules = rules,
              **profile: Any) -> Customer:
        return Customer(rules, customer_id, **profile)

    return build


@pytest.fixture
def config_dir() -> Path:
    """The project's ``config/`` directory (rule file and reference lists)."""
    return CONFIG_DIR


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def payload() -> Callable[..., dict[str, Any]]:
    """``transaction_payload``: a valid transaction event dict, with changes."""
    return transaction_payload


@pytest.fixture
def rule_document() -> Callable[..., dict[str, Any]]:
    """``config/rules.yaml`` as parsed YAML (a fresh copy), with an optional nested patch."""

    def build(patch: dict[str, Any] | None = None) -> dict[str, Any]:
        return deep_merge(default_document(), patch or {})

    return build
