"""JSON Lines in and out: a message written by ``message_line`` reads back as the same
(topic, key, event); what is not an event reads back as an undecodable record."""

from datetime import UTC, datetime
from pathlib import Path

import orjson

from streams.backtest import run_backtest
from streams.jsonl import message_line, parse_line, read_events
from streams.synthetic import bad_messages, planted_scenarios, to_messages

END = datetime(2026, 11, 21, 12, tzinfo=UTC)


def test_messages_read_back_as_written(tmp_path: Path, rules):
    messages = to_messages(planted_scenarios(END)) + [m for m, _ in bad_messages(END)]
    path = tmp_path / "stream.jsonl"
    path.write_bytes(b"".join(message_line(m.topic, m.key, m.value) for m in messages))

    lines = list(read_events(path))

    assert [number for number, *_ in lines] == list(range(1, len(messages) + 1))
    for (_, topic, key, value), message in zip(lines, messages, strict=True):
        if message.value.startswith(b"{") and topic == message.topic and key is not None:
            assert orjson.loads(value) == orjson.loads(message.value)
            assert key == message.key
    from_file = run_backtest([(t, k, v) for _, t, k, v in lines], rules)
    from_memory = run_backtest([(m.topic, m.key, m.value) for m in messages], rules)
    assert {a.alert_id for a in from_file.alerts} == {a.alert_id for a in from_memory.alerts}
    assert sorted(r.kind for _, r in from_file.rejected) == sorted(
        r.kind for _, r in from_memory.rejected)


def test_a_line_that_is_not_a_wrapped_event_is_an_undecodable_record():
    for line in (b"{not json", b"[1, 2]", b'{"topic": "elsewhere", "event": {}}',
                 b'{"topic": "onboarding", "event": "text"}'):
        number, topic, key, value = parse_line(7, line)
        assert (number, topic, key, value) == (7, "transactions", None, line)


def test_a_given_key_wins_over_the_customer_id():
    _, _, key, _ = parse_line(1, b'{"topic": "onboarding", "key": "other", '
                                 b'"event": {"customer_id": "c-1"}}')
    assert key == b"other"
    _, _, key, _ = parse_line(1, b'{"topic": "onboarding", "key": null, '
                                 b'"event": {"customer_id": "c-1"}}')
    assert key is None
