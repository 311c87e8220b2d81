"""The worker's metrics: every labelled counter series exists from the start, and the
endpoint listens where ``AMLSTREAM_METRICS_HOST`` says."""

import socket
import urllib.request

from faust.types import TP
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents import metrics
from agents.app import consumer_lag, create_app
from agents.pipeline import LagObserver
from agents.settings import Settings


def _series() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_exist_at_zero_before_their_first_increment(tmp_path):
    """A series that appears only at its first increment reads as no data to a rate or an
    alerting rule (and that first increment is lost to ``rate``)."""
    settings = Settings(store="memory://", data_dir=tmp_path)
    aml = create_app(settings)
    series = _series()
    internal = {name for (name, labels) in series
                if name == "amlstream_events_consumed_total"
                and dict(labels)["topic"].endswith("repartition")}
    assert internal  # the network stages' topics too
    expected = [
        ("amlstream_events_consumed_total",
         (("outcome", "dead_lettered"), ("topic", settings.transactions_topic))),
        ("amlstream_dead_letters_total", (("reason", "invalid_json"),)),
        ("amlstream_dead_letters_total", (("reason", "output_rejected"),)),
        ("amlstream_risk_changes_total", (("level", "high"),)),
        ("amlstream_outputs_lost_total", (("kind", "risk_change"),)),
        ("amlstream_intel_rejected_total", (("reason", "index_full"),)),
        ("amlstream_network_late_total", (("stage", "recipient"),)),
        ("amlstream_alerts_total", (("rule", "sanctioned_counterparty"),
                                    ("severity", "critical"))),
        ("amlstream_alerts_total", (("rule", "flow_cycle"), ("severity", "high"))),
    ]
    for key in expected:
        assert key in series, key
    assert aml.rules.config.rules.sanctioned_counterparty.severity.value == "critical"


def test_the_endpoint_listens_on_the_configured_interface():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert metrics.serve(port, "127.0.0.1") == ("127.0.0.1", port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert b"amlstream_events_consumed_total" in response.read()
    assert Settings(metrics_host="127.0.0.1").metrics_host == "127.0.0.1"


def test_consumer_lag_per_owned_input_partition(tmp_path, monkeypatch):
    settings = Settings(store="memory://", data_dir=tmp_path)
    app = create_app(settings).faust
    inputs = (settings.onboarding_topic, settings.transactions_topic)
    committed, fresh = TP(settings.transactions_topic, 1), TP(settings.onboarding_topic, 0)
    unfetched, other = TP(settings.transactions_topic, 2), TP("elsewhere", 0)
    monkeypatch.setattr(app.consumer, "assignment", lambda: {committed, fresh, unfetched, other})
    ends = {committed: 120, fresh: 40, other: 9}
    monkeypatch.setattr(app.consumer, "highwater", lambda tp: ends.get(tp))
    app.consumer._committed_offset[committed] = 100  # as Faust records a commit

    lag = consumer_lag(app, inputs)
    assert lag == {(committed.topic, 1): 20, (fresh.topic, 0): 40}

    metrics.report_consumer_lag(lag)
    series = _series()
    assert series[("amlstream_consumer_lag_records",
                   (("partition", "1"), ("topic", committed.topic)))] == 20
    metrics.report_consumer_lag({(fresh.topic, 0): 0})  # partition 1 revoked
    series = _series()
    assert ("amlstream_consumer_lag_records",
            (("partition", "1"), ("topic", committed.topic))) not in series
    assert series[("amlstream_consumer_lag_records",
                   (("partition", "0"), ("topic", fresh.topic)))] == 0


def test_back_dated_events_stay_out_of_the_lag_histogram():
    """A backfill's day-old events made the histogram's p99 read a day on the demo: events
    older than the allowed lateness are counted apart, with their largest lag as a gauge."""
    def value(name):
        return REGISTRY.get_sample_value(name) or 0.0
    observed = value("amlstream_processing_lag_seconds_count")
    backdated = value("amlstream_events_backdated_total")

    lag = LagObserver(now_s=1_000_000.0, allowed_lateness_s=3600)
    for occurred_at_s in (1_000_000.0 - 10, 1_000_000.0 - 5000, 1_000_000.0 - 100_000):
        lag.observe(occurred_at_s)
    lag.report()
    assert value("amlstream_processing_lag_seconds_count") == observed + 1
    assert value("amlstream_events_backdated_total") == backdated + 2
    assert value("amlstream_backdated_lag_seconds") == 100_000

    LagObserver(now_s=1_000_000.0, allowed_lateness_s=3600).report()  # no event: unchanged
    assert value("amlstream_backdated_lag_seconds") == 100_000
    current = LagObserver(now_s=1_000_000.0, allowed_lateness_s=3600)
    current.observe(1_000_000.0 - 1)
    current.report()
    assert value("amlstream_backdated_lag_seconds") == 0
