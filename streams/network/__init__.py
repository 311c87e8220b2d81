"""The network stages: laundering seen across customers (see ``docs/network-design.md``).

Stage boundaries are the record formats of ``records``:

- S1 ``customer`` (``streams.replay``, keyed by customer) emits a ``Leg`` per transfer: to the
  ``cp-legs`` topic keyed by counterparty, and to the ``flows`` topic keyed by the customer;
- S2 ``counterparty`` (``counterparty``, keyed by counterparty) reads ``cp-legs``; it alerts
  every customer involved in a collection point, a distribution point or a shared wallet;
- S3 ``flow`` (``flow``, keyed by customer) reads ``flows``: the customer's own legs and the
  ``Provenance`` its senders pass on, and sends provenance on to the next customer (``flows``
  again); it alerts cycles, layering chains and indirect exposure.

A stage knows nothing of another's state. Every module here is pure: no Kafka, no clock.
"""

NETWORK_RULE_IDS = (
    "collection_point", "distribution_point", "shared_wallet_unrelated",
    "retro_listed_counterparty",  # S2
    "flow_cycle", "layering_chain", "indirect_exposure",  # S3
)
"""The rules the network stages evaluate (S1's own rules are ``streams.rules.RULE_IDS``)."""

LATENESS_S = 60
"""Default ``AMLSTREAM_NETWORK_LATENESS_S``: a leg this much older than its partition's newest
event is re-timed to that (source-late)."""
HOP_DELAY_S = 3600
"""Default ``AMLSTREAM_NETWORK_HOP_DELAY_S``: provenance is applied at the recipient this long
(event time) after the transfer that sent it."""
