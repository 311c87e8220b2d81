"""Prometheus metrics. Labels are topic, outcome, rule, severity, reason: never a customer id,
address or any other value that identifies a person."""

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from schemas.dead_letters import ErrorKind
from schemas.risk import RiskLevel
from streams.network import NETWORK_RULE_IDS
from streams.network.emit import CP_LEGS, FLOWS
from streams.rules import RULE_IDS

EVENTS_CONSUMED = Counter(
    "amlstream_events_consumed_total",
    "Input events consumed, by topic and outcome (processed or dead_lettered).",
    ["topic", "outcome"],
)
EVENTS_REPLAYED = Counter(
    "amlstream_events_replayed_total",
    "Processed events already applied to the customer's state (re-delivery); they change nothing.",
    ["topic"],
)
EVENTS_LATE = Counter(
    "amlstream_events_late_total",
    "Processed transactions later than the allowed lateness: kept out of the windows.",
)
ALERTS = Counter("amlstream_alerts_total", "Alerts published, by rule and severity.",
                 ["rule", "severity"])
RISK_CHANGES = Counter("amlstream_risk_changes_total",
                       "Customer risk-level changes published, by new level.", ["level"])
DEAD_LETTERS = Counter("amlstream_dead_letters_total", "Dead letters published, by reason.",
                       ["reason"])
PROCESSING_LAG = Histogram(
    "amlstream_processing_lag_seconds",
    "Wall-clock time at processing minus the event's occurred_at, for events within the "
    "rule set's allowed lateness (older ones: amlstream_events_backdated_total).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600),
)
EVENTS_BACKDATED = Counter(
    "amlstream_events_backdated_total",
    "Input events older than the allowed lateness when processed (a backfill, a replay of old "
    "data, a producer's clock): kept out of the processing-lag histogram.")
BACKDATED_LAG = Gauge(
    "amlstream_backdated_lag_seconds",
    "Largest processing lag among the back-dated events of the last batch that had events "
    "(0: none were back-dated).")
BATCH_DURATION = Histogram(
    "amlstream_batch_duration_seconds",
    "Time to process one batch: decode, apply, persist state, publish.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CHECKPOINT_WRITE = Histogram(
    "amlstream_checkpoint_write_seconds",
    "Time to make one cut durable (agents.checkpoint): its outputs acknowledged by the broker, "
    "its states written to the store and the changelog, its inputs acknowledged.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
BATCH_SIZE = Histogram("amlstream_batch_events", "Events per processed batch.",
                       buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000))
EVENTS_HELD = Gauge("amlstream_events_held",
                    "Valid events waiting for the other input topic (event-time ordering).")
INPUT_PARTITIONS_PAUSED = Gauge(
    "amlstream_input_partitions_paused",
    "Input topic partitions whose fetching is paused: too far ahead of the other input topic.")
OUTPUTS_LOST = Counter(
    "amlstream_outputs_lost_total",
    "Outputs the broker refused for a reason of the record, whose replacing dead letter was "
    "refused too (see the log); by kind.", ["kind"])
CUSTOMERS_IN_STATE = Gauge("amlstream_customers_in_state",
                           "Customers in this worker's state store: RocksDB's estimate, which "
                           "may count a customer rewritten since its last compaction twice.")
RULE_SETS_REJECTED = Counter("amlstream_rule_sets_rejected_total",
                             "Rule sets from the rules topic that failed validation.")
GC_CYCLE_OBJECTS_FREED = Counter(
    "amlstream_gc_cycle_objects_freed_total",
    "Objects in reference cycles freed by the periodic full garbage collection (agents.gc_policy)."
)
INTEL_REJECTED = Counter(
    "amlstream_intel_rejected_total",
    "Address-intel entries rejected (the others apply), by reason: invalid_key, "
    "invalid_value, key_mismatch, index_full.", ["reason"])
INTEL_ENTRIES = Gauge("amlstream_intel_entries", "Address-intel listings in force in this worker.")
RULE_SET = Gauge("amlstream_rule_set_info", "The rule set in force (value 1).", ["version"])


def serve(port: int, host: str = "0.0.0.0") -> tuple[str, int]:
    """Expose /metrics over HTTP on ``host``:``port`` (``AMLSTREAM_METRICS_HOST``); return
    the address it listens on."""
    server, _ = start_http_server(port, addr=host)
    address, bound_port = server.server_address[:2]
    return str(address), int(bound_port)


NETWORK_RECORDS = Counter(
    "amlstream_network_records_total",
    "Internal records sent to the network stages, by topic (cp-legs, flows).", ["topic"])
NETWORK_MARKERS = Counter("amlstream_network_markers_total",
                          "Promise markers sent to the internal topics' partitions.")
NETWORK_HELD = Gauge("amlstream_network_records_held",
                     "Internal records waiting for their producers' promises.")
NETWORK_LATE = Counter(
    "amlstream_network_late_total",
    "Legs re-timed by the network ordering: source (older than their partition's newest "
    "event less the lateness) or recipient (from a producer that had gone idle).", ["stage"])


CONSUMER_LAG = Gauge(
    "amlstream_consumer_lag_records",
    "Records of an input partition this worker owns that its group has not committed yet: "
    "the end offset at the last fetch less the committed offset (0 before any commit).",
    ["topic", "partition"])
_lag_reported: set[tuple[str, str]] = set()


def report_consumer_lag(lag: dict[tuple[str, int], int]) -> None:
    """Set the lag of each input partition owned now; drop the series of those no longer."""
    now = {(topic, str(partition)) for topic, partition in lag}
    for labels in _lag_reported - now:
        CONSUMER_LAG.remove(*labels)
    for (topic, partition), records in lag.items():
        CONSUMER_LAG.labels(topic, str(partition)).set(records)
    _lag_reported.clear()
    _lag_reported.update(now)


INTEL_REJECTION_REASONS = ("invalid_key", "invalid_value", "key_mismatch", "index_full")
OUTPUT_KINDS = ("alert", "risk_change", "dead_letter")


def present_from_start(input_topics: Iterable[str], internal_topics: Iterable[str],
                       rules: Any) -> None:
    """Every labelled counter's series exists at 0 before its first increment, so that a rate
    or an alert on it works from the start (a series that appears later reads as no data, and
    its first increment is lost to ``rate``). Rule series: each rule enabled in ``rules``
    (a ``CompiledRules``), at its configured severity."""
    for topic in [*input_topics, *internal_topics]:
        for outcome in ("processed", "dead_lettered"):
            EVENTS_CONSUMED.labels(topic, outcome)
        EVENTS_REPLAYED.labels(topic)
    for kind in ErrorKind:
        DEAD_LETTERS.labels(kind.value)
    for level in RiskLevel:
        RISK_CHANGES.labels(level.value)
    for output in OUTPUT_KINDS:
        OUTPUTS_LOST.labels(output)
    for reason in INTEL_REJECTION_REASONS:
        INTEL_REJECTED.labels(reason)
    if internal_topics:
        for internal in (CP_LEGS, FLOWS):
            NETWORK_RECORDS.labels(internal)
        for stage in ("source", "recipient"):
            NETWORK_LATE.labels(stage)
    alerting = set(RULE_IDS) | set(NETWORK_RULE_IDS)
    for rule_id, config in rules.config.rules:
        severity = getattr(config, "severity", None)
        if rule_id in alerting and severity is not None and getattr(config, "enabled", True):
            ALERTS.labels(rule_id, severity.value)
