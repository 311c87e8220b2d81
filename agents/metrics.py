"""Prometheus metrics. Labels are topic, outcome, rule, severity, reason: never a customer id,
address or any other value that identifies a person."""

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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
    "Wall-clock time at processing minus the event's occurred_at.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)
BATCH_DURATION = Histogram(
    "amlstream_batch_duration_seconds",
    "Time to process one batch: decode, apply, persist state, publish.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
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


def serve(port: int) -> None:
    """Expose /metrics over HTTP on ``port`` (all interfaces, for Prometheus)."""
    start_http_server(port)
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
