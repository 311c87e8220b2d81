"""The worker's web server (Faust's own): the investigators' customer and alert view, and the
readiness and liveness endpoints for orchestrators.

A customer's state lives on the worker that owns its partition. A request for a customer is
routed there by Faust's table routing (``app.table_route`` over the customer-state table: the
assignor knows every worker's URL, ``AMLSTREAM_WEB_URL``); the worker that owns it answers from
its state, the others forward the request and relay the answer.

    GET /                                          a lookup form
    GET /customers/ID          /api/customers/ID   the customer (HTML, JSON)
    GET /customers/ID/alerts/ALERT  /api/customers/ID/alerts/ALERT   one alert with decisions
    GET /ready   200 once the worker has joined its group and restored its state, else 503
    GET /live    200 while the worker's processing loop runs, else 503
"""

import time
from dataclasses import dataclass, field
from typing import Any

from agents import web_pages
from agents.state_table import PartitionRef, StateTable
from streams.customer_view import alert_of, customer_view
from streams.partitioning import partition_of

STALLED_AFTER_S = 60.0
"""The processing loop silent this long: not live (its timer ticks every 50 ms)."""


@dataclass
class Health:
    """Fed by the worker's processing loop (``tick``) and read by /live."""

    last_tick_s: float = field(default_factory=time.monotonic)

    def tick(self) -> None:
        self.last_tick_s = time.monotonic()

    def live(self) -> bool:
        return time.monotonic() - self.last_tick_s < STALLED_AFTER_S


def ready(app: Any) -> tuple[bool, str]:
    """Joined, not rebalancing, state restored: (ready, why not)."""
    if not app.flow_control.is_active():
        return False, "rebalancing or not joined yet"
    recovery = app.tables.recovery
    if app.in_recovery or not recovery.completed.is_set():
        return False, "restoring state from the changelog"
    return True, "ready"


class NotOwned(Exception):
    """The customer's partition is not this worker's (a rebalance is moving it)."""


class CustomerReader:
    """A customer's state as the worker has it, read without touching the worker's cache (a
    state read for a partition being moved must not be processed later), and only for a
    partition the worker processes now (``owns``), else ``NotOwned``."""

    def __init__(self, customers: StateTable, partitions: int, owns: Any) -> None:
        self.customers = customers
        self.partitions = partitions
        self.owns = owns
        self.topic = customers.table.changelog_topic.get_topic_name()

    def state(self, customer_id: str) -> Any:
        key = customer_id.encode()
        partition = partition_of(key, self.partitions)
        if not self.owns(partition):
            raise NotOwned
        customers = self.customers
        state = customers.cached.get(key)
        if state is None:
            raw = customers.stored(key, PartitionRef(self.topic, partition))
            state = None if raw is None else customers.decode(raw)
        return state


def install(app: Any, customers: StateTable, rules: Any, partitions: int, health: Health,
            owns: Any) -> None:
    """Register the pages on ``app`` (a Faust app); ``rules()`` gives the rule set in force,
    ``owns(partition)`` whether this worker processes that input partition now."""
    table = customers.table
    state_of = CustomerReader(customers, partitions, owns).state

    def view_of(customer_id: str) -> dict[str, Any] | None:
        state = state_of(customer_id)
        return None if state is None else customer_view(customer_id, state, rules())

    def alert_view(customer_id: str, alert_id: str) -> dict[str, Any] | None:
        state = state_of(customer_id)
        return None if state is None else alert_of(state, alert_id)

    def answer(web: Any, build: Any, what: str, page: Any = None) -> Any:
        """``build()``'s value as JSON, or as the HTML ``page(value)``; a 404 when there is
        none, a 503 while the customer's partition moves between workers."""
        try:
            value = build()
        except NotOwned:
            return web.json({"error": "the customer's partition is moving between workers "
                                      "(a rebalance): try again in a few seconds"}, status=503)
        if value is None and page is None:
            return web.json({"error": f"no {what} here"}, status=404)
        if value is None:
            return web.html(web_pages.index_page().replace(
                "<h1>Customer lookup</h1>", f"<h1>Customer lookup</h1><p>No {what}.</p>"),
                status=404)
        return web.json(value) if page is None else web.html(page(value))

    @app.page("/")
    async def index(web: Any, request: Any) -> Any:
        return web.html(web_pages.index_page())

    @app.page("/customer")
    async def lookup(web: Any, request: Any) -> Any:
        customer_id = request.query.get("id", "").strip()
        location = web_pages.customer_href(customer_id) if customer_id else "/"
        return web.text("", status=303, headers={"Location": location})

    @app.page("/api/customers/{customer_id}")
    @app.table_route(table=table, match_info="customer_id")
    async def customer_json(web: Any, request: Any, customer_id: str) -> Any:
        return answer(web, lambda: view_of(customer_id), "such customer")

    @app.page("/customers/{customer_id}")
    @app.table_route(table=table, match_info="customer_id")
    async def customer_html(web: Any, request: Any, customer_id: str) -> Any:
        return answer(web, lambda: view_of(customer_id), "such customer",
                      web_pages.customer_page)

    @app.page("/api/customers/{customer_id}/alerts/{alert_id}")
    @app.table_route(table=table, match_info="customer_id")
    async def alert_json(web: Any, request: Any, customer_id: str, alert_id: str) -> Any:
        return answer(web, lambda: alert_view(customer_id, alert_id), "such alert")

    @app.page("/customers/{customer_id}/alerts/{alert_id}")
    @app.table_route(table=table, match_info="customer_id")
    async def alert_html(web: Any, request: Any, customer_id: str, alert_id: str) -> Any:
        return answer(web, lambda: alert_view(customer_id, alert_id), "such alert",
                      lambda alert: web_pages.alert_page(customer_id, alert))

    @app.page("/ready")
    async def readiness(web: Any, request: Any) -> Any:
        ok, why = ready(app)
        return web.json({"ready": ok, "reason": why}, status=200 if ok else 503)

    @app.page("/live")
    async def liveness(web: Any, request: Any) -> Any:
        ok = health.live()
        return web.json({"live": ok}, status=200 if ok else 503)
