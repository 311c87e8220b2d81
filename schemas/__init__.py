"""Wire formats of amlstream: pydantic v2 models only, importing nothing local.

Inbound models (events) tolerate unknown fields and carry a schema version; outbound models
(alerts, dead letters) are strict. Money is ``Decimal`` here, never a binary float.
"""
