"""The Kafka-free core: customer state, rolling windows, rules and the ``apply`` entry point.

It never imports faust, aiokafka or prometheus_client, and never reads the clock: event time
is an input. Money inside the core is integer USD cents (see ``streams.money``).
"""
