"""Read the alerts topic and print the alerts an analyst asks for: one readable line each, or
their JSON."""

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from agents import kafka_clients
from agents.settings import Settings
from schemas.alerts import Alert, Severity

SEVERITY_ORDER = list(Severity)


RULE_WIDTH = 25
CUSTOMER_WIDTH = 28


def fit(text: str, width: int) -> str:
    """``text`` padded to ``width``, or shortened to it with its middle elided (``…``): the
    columns stay aligned whatever an id's length (``--json`` prints it whole)."""
    if len(text) <= width:
        return text.ljust(width)
    head = (width - 1) // 2
    return f"{text[:head]}…{text[len(text) - (width - 1 - head):]}"


def alert_line(alert: Alert) -> str:
    at = alert.triggered_at.strftime("%Y-%m-%d %H:%M:%SZ")
    return (f"{alert.severity.value.upper():8} {at}  {fit(alert.rule_id, RULE_WIDTH)} "
            f"{fit(alert.customer_id, CUSTOMER_WIDTH)} {alert.summary}")


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to print (None: any)."""

    customer_id: str | None = None
    rule_id: str | None = None
    min_severity: Severity | None = None
    """This severity or a higher one."""

    def matches(self, alert: Alert) -> bool:
        return ((self.customer_id is None or alert.customer_id == self.customer_id)
                and (self.rule_id is None or alert.rule_id == self.rule_id)
                and (self.min_severity is None or SEVERITY_ORDER.index(alert.severity)
                     >= SEVERITY_ORDER.index(self.min_severity)))


def selected(values: Iterable[bytes], wanted: AlertFilter, as_json: bool) -> Iterator[str]:
    """The lines to print for the alerts (raw topic values) that ``wanted`` matches."""
    for value in values:
        alert = Alert.model_validate_json(value)
        if wanted.matches(alert):
            yield alert.model_dump_json() if as_json else alert_line(alert)


async def tail_alerts(settings: Settings, from_beginning: bool = False,
                      limit: int | None = None, idle_exit_s: float | None = None,
                      wanted: AlertFilter = AlertFilter(), as_json: bool = False) -> int:
    """Print matching alerts as they come; stop after exactly ``limit`` of them, or after
    ``idle_exit_s`` without a new record."""
    consumer = kafka_clients.consumer(
        settings, settings.alerts_topic,
        auto_offset_reset="earliest" if from_beginning else "latest", enable_auto_commit=False)
    await kafka_clients.start(consumer, settings)
    printed = 0
    try:
        while limit is None or printed < limit:
            batch = await consumer.getmany(timeout_ms=int((idle_exit_s or 1.0) * 1000))
            if not batch and idle_exit_s is not None:
                break
            values = (record.value for records in batch.values() for record in records)
            for line in selected(values, wanted, as_json):
                print(line, flush=True)
                printed += 1
                if printed == limit:
                    break
    except asyncio.CancelledError:
        pass
    finally:
        await consumer.stop()
    return 0
