"""Read the alerts topic and print one readable line per alert."""

import asyncio

from agents import kafka_clients
from agents.settings import Settings
from schemas.alerts import Alert


def alert_line(alert: Alert) -> str:
    at = alert.triggered_at.strftime("%Y-%m-%d %H:%M:%SZ")
    return (f"{alert.severity.value.upper():8} {at}  {alert.rule_id:24} {alert.customer_id:28} "
            f"{alert.summary}")


async def tail_alerts(settings: Settings, from_beginning: bool = False,
                      limit: int | None = None, idle_exit_s: float | None = None) -> int:
    consumer = kafka_clients.consumer(
        settings, settings.alerts_topic,
        auto_offset_reset="earliest" if from_beginning else "latest", enable_auto_commit=False)
    await kafka_clients.start(consumer, settings)
    seen = 0
    try:
        while limit is None or seen < limit:
            batch = await consumer.getmany(timeout_ms=int((idle_exit_s or 1.0) * 1000))
            if not batch and idle_exit_s is not None:
                break
            for records in batch.values():
                for record in records:
                    print(alert_line(Alert.model_validate_json(record.value)), flush=True)
                    seen += 1
    except asyncio.CancelledError:
        pass
    finally:
        await consumer.stop()
    return 0
