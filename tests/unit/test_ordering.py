"""InputAligner: when a held event may go, and in which order; never a matter of timing."""

import random

from streams.ordering import InputAligner

TOPICS = ("onboarding", "transactions")
ONB, TXN = TOPICS


def aligner(highwaters: dict | None = None, max_held: int = 1000) -> InputAligner:
    marks = highwaters if highwaters is not None else {}
    return InputAligner(TOPICS, highwater=lambda t, p: marks.get((t, p)), max_held=max_held)


def learned(ends: dict[str, int], partition: int = 0, **kwargs) -> InputAligner:
    """An aligner that has learned partition ``partition``'s ends (reading from offset 0)."""
    a = aligner(**kwargs)
    for topic in TOPICS:
        a.learn(topic, partition, 0, ends.get(topic, 0))
    return a


def test_two_waiting_heads_merge_by_event_time():
    a = learned({ONB: 2, TXN: 1})
    a.add(TXN, 0, 0, occurred_at_s=50.0, item="deposit")
    a.add(ONB, 0, 0, occurred_at_s=40.0, item="verified")
    assert a.release() == ["verified"]  # then the deposit is alone again, and waits
    a.add(ONB, 0, 1, occurred_at_s=60.0, item="profile")
    assert a.release() == ["deposit", "profile"]  # transactions/0 is caught up after it


def test_onboarding_goes_first_on_a_tie():
    a = learned({ONB: 1, TXN: 1})
    a.add(TXN, 0, 0, occurred_at_s=50.0, item="deposit")
    a.add(ONB, 0, 0, occurred_at_s=50.0, item="verified")
    assert a.release() == ["verified", "deposit"]


def test_nothing_goes_before_the_partition_is_learned():
    a = aligner()
    a.add(TXN, 0, 0, occurred_at_s=50.0, item="deposit")
    assert a.release() == []
    assert a.unlearned() == [(ONB, 0), (TXN, 0)]
    a.learn(ONB, 0, 0, 0)  # the onboarding partition is empty
    a.learn(TXN, 0, 0, 1)
    assert a.unlearned() == []
    assert a.release() == ["deposit"]


def test_alone_it_waits_while_the_other_partition_holds_unread_records():
    a = learned({ONB: 3, TXN: 1})
    a.add(ONB, 0, 0, occurred_at_s=10.0, item="registered")
    a.add(TXN, 0, 0, occurred_at_s=50.0, item="deposit")
    assert a.release() == ["registered"]  # deposit waits: onboarding offsets 1 and 2 unread
    a.add(ONB, 0, 1, occurred_at_s=20.0, item="submitted")
    assert a.release() == ["submitted"]
    a.add(ONB, 0, 2, occurred_at_s=90.0, item="verified")
    assert a.release() == ["deposit", "verified"]


def test_alone_it_waits_for_a_fetch_response_of_the_other_partition_after_it_came():
    """Live: an end learned before the waiting event was fetched may miss an older record
    written since (a fetch of the other partition failed during a broker restart, say)."""
    polled = {(TXN, 0): 1_000.0}
    a = InputAligner(TOPICS, highwater=lambda t, p: None,
                     polled_ms=lambda t, p: polled.get((t, p)))
    for topic in TOPICS:
        a.learn(topic, 0, 0, 0)
    a.add(ONB, 0, 0, occurred_at_s=90.0, item="verified", fetched_ms=2_000.0)
    assert a.release() == []  # transactions/0's end is as of 1,000 ms: it may hold more now
    polled[(TXN, 0)] = 2_000.0  # a fetch response since: still nothing there
    assert a.release() == ["verified"]
    a.add(ONB, 0, 1, occurred_at_s=95.0, item="profile")  # a replay: no time, no check
    assert a.release() == ["profile"]


def test_a_record_that_did_not_decode_moves_the_position():
    """The issue's minimal case: a valid onboarding event, a truncated one, then a transfer.
    The truncated record is read (dead-lettered): the partition is caught up."""
    a = learned({ONB: 2, TXN: 1})
    a.add(ONB, 0, 0, occurred_at_s=10.0, item="registered")
    a.add(TXN, 0, 0, occurred_at_s=50.0, item="transfer")
    assert a.release() == ["registered"]
    a.read(ONB, 0, 1)  # the truncated one
    assert a.release() == ["transfer"]


def test_a_newer_highwater_than_the_learned_end_is_waited_for():
    marks = {(ONB, 0): 1}
    a = learned({ONB: 1, TXN: 1}, highwaters=marks)
    a.add(TXN, 0, 0, occurred_at_s=50.0, item="deposit")
    marks[(ONB, 0)] = 2  # a fetch response says one more onboarding record was written
    a.read(ONB, 0, 0)
    assert a.release() == []
    a.read(ONB, 0, 1)
    assert a.release() == ["deposit"]


def test_the_start_position_counts_when_nothing_was_read():
    a = aligner()
    a.add(TXN, 0, 0, occurred_at_s=50.0, item="deposit")
    a.learn(ONB, 0, 7, 7)  # committed at 7, end 7: nothing left to read
    a.learn(TXN, 0, 0, 1)
    assert a.release() == ["deposit"]
    b = aligner()
    b.add(TXN, 0, 0, occurred_at_s=50.0, item="deposit")
    b.learn(ONB, 0, 6, 7)
    b.learn(TXN, 0, 0, 1)
    assert b.release() == []


def test_offset_order_is_kept_within_a_topic_partition():
    a = learned({ONB: 0, TXN: 3})
    for offset, at_s in enumerate((30.0, 10.0, 20.0)):  # out of event-time order
        a.add(TXN, 0, offset, occurred_at_s=at_s, item=offset)
    assert a.release() == [0, 1, 2]


def test_a_waiting_partition_does_not_hold_back_another():
    a = aligner()
    for partition in (0, 1):
        a.learn(ONB, partition, 0, 5)
        a.learn(TXN, partition, 0, 1)
    a.add(TXN, 0, 0, occurred_at_s=50.0, item="waits")
    a.add(TXN, 1, 0, occurred_at_s=50.0, item="goes")
    for offset in range(5):
        a.read(ONB, 1, offset)
    assert a.release() == ["goes"]


def test_too_many_waiting_pause_that_topic_partition_until_half_have_gone():
    a = learned({ONB: 100, TXN: 100}, max_held=4)
    a.add(ONB, 0, 0, occurred_at_s=10.0, item="onb")
    for offset in range(5):
        a.add(TXN, 0, offset, occurred_at_s=100.0 + offset, item=offset)
    assert a.release() == ["onb"]  # the transfers wait for onboarding offsets 1..99
    assert a.to_pause() == {(TXN, 0)}
    assert a.to_pause() == set()  # reported once
    assert a.to_resume() == set()
    assert len(a) == 5  # nothing released out of order to make room
    a.add(ONB, 0, 1, occurred_at_s=102.5, item="later")
    assert a.release() == [0, 1, 2, "later"]
    assert a.to_resume() == {(TXN, 0)}
    assert a.paused == set()


def test_dropping_revoked_partitions_forgets_only_them():
    a = aligner()
    for partition in (0, 1):
        a.learn(ONB, partition, 0, 5)
        a.learn(TXN, partition, 0, 5)
        a.add(TXN, partition, 0, occurred_at_s=50.0, item=partition)
    a.paused = {(TXN, 0)}
    assert a.drop({0}) == {(TXN, 0)}
    assert len(a) == 1
    assert a.unlearned() == []
    a.add(TXN, 0, 1, occurred_at_s=60.0, item="again")
    assert a.unlearned() == [(ONB, 0), (TXN, 0)]


def _static_merge(first: list[tuple[float, str]], second: list[tuple[float, str]]) -> list[str]:
    """The order the ordering step promises: the two sequences merged by event time, the
    first topic's head on a tie, each sequence in its own order."""
    i = j = 0
    out = []
    while i < len(first) or j < len(second):
        if j == len(second) or (i < len(first) and first[i][0] <= second[j][0]):
            out.append(first[i][1])
            i += 1
        else:
            out.append(second[j][1])
            j += 1
    return out


def test_the_order_depends_on_the_records_only_never_on_how_they_arrive():
    """Random partitions (out-of-order event times, undecodable records among them), each
    delivered in many random splits and interleavings of fetches: always the static merge."""
    rng = random.Random(12)
    for _ in range(300):
        sequences = {}
        for topic in TOPICS:
            records = []
            for offset in range(rng.randint(0, 12)):
                decodes = rng.random() > 0.2
                records.append((offset, float(rng.randint(0, 30)) if decodes else None,
                                f"{topic}-{offset}"))
            sequences[topic] = records
        expected = _static_merge(
            *[[(at_s, name) for _, at_s, name in sequences[topic] if at_s is not None]
              for topic in TOPICS])
        for _ in range(10):
            a = aligner()
            cursors = dict.fromkeys(TOPICS, 0)
            released: list[str] = []
            learned_yet = False
            while any(cursors[t] < len(sequences[t]) for t in TOPICS) or len(a):
                topic = rng.choice(TOPICS)
                take = rng.randint(0, 3)
                for offset, at_s, name in sequences[topic][cursors[topic]:cursors[topic] + take]:
                    if at_s is None:
                        a.read(topic, 0, offset)
                    else:
                        a.add(topic, 0, offset, at_s, name)
                cursors[topic] = min(cursors[topic] + take, len(sequences[topic]))
                if not learned_yet and a.unlearned():
                    for t in TOPICS:
                        a.learn(t, 0, 0, len(sequences[t]))
                    learned_yet = True
                released += a.release()
            assert released == expected


THREE = ("onboarding", "transactions", "alert-decisions")


def test_three_topics_merge_by_event_time_and_wait_for_the_one_not_caught_up():
    marks: dict = {}
    a = InputAligner(THREE, highwater=lambda t, p: marks.get((t, p)))
    for topic, end in zip(THREE, (1, 2, 1), strict=True):
        a.learn(topic, 0, 0, end)
    a.add(THREE[1], 0, 0, occurred_at_s=30.0, item="deposit")
    a.add(THREE[2], 0, 0, occurred_at_s=20.0, item="decision")
    assert a.release() == []  # onboarding/0 has an unread record: it may be older
    a.add(ONB, 0, 0, occurred_at_s=25.0, item="verified")
    assert a.release() == ["decision", "verified", "deposit"]
    marks[(THREE[2], 0)] = 2  # a new decision is written
    a.add(THREE[2], 0, 1, occurred_at_s=30.0, item="late decision")
    a.add(THREE[1], 0, 1, occurred_at_s=30.0, item="withdrawal")
    assert a.release() == ["withdrawal", "late decision"]  # a tie: topic order


def test_three_topics_give_the_same_order_however_records_arrive():
    rng = random.Random(7)
    records = {topic: sorted(rng.sample(range(1000), 40)) for topic in THREE}

    def run(seed: int) -> list:
        a = InputAligner(THREE, highwater=lambda t, p: None)
        for topic in THREE:
            a.learn(topic, 0, 0, len(records[topic]))
        cursors = dict.fromkeys(THREE, 0)
        order, shuffle = [], random.Random(seed)
        while any(cursors[t] < len(records[t]) for t in THREE):
            topic = shuffle.choice([t for t in THREE if cursors[t] < len(records[t])])
            at = records[topic][cursors[topic]]
            a.add(topic, 0, cursors[topic], occurred_at_s=float(at), item=(at, topic))
            cursors[topic] += 1
            order += a.release()
        return order + a.release()

    first = run(1)
    assert len(first) == 120
    assert first == sorted(first, key=lambda item: (item[0], THREE.index(item[1])))
    assert all(run(seed) == first for seed in range(2, 12))
