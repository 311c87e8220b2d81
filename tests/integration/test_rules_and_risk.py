"""Rule sets published while the worker runs, and risk-level changes on their topic."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.rules_feed import RULE_SET_KEY, publish
from schemas.risk import RiskChange
from streams.ruleset import load_rules
from streams.synthetic import Scenario, ScenarioBuilder, to_messages

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0)


def _withdrawal_customer(name: str, usd: str) -> Scenario:
    scenario = Scenario(name, name, ())
    b = ScenarioBuilder(scenario)
    b.verified(END - timedelta(days=200), tier=2, country="US")
    b.transfer(END - timedelta(hours=1), "out", usd, address="0x" + "c9" * 20)
    return scenario



async def test_a_published_rule_set_goes_live_and_a_bad_one_is_rejected(deployment,
                                                                         running_worker):
    await deployment.produce(to_messages([_withdrawal_customer("before", "60000.00")]))
    [before] = await deployment.alerts_for("before")
    shipped = load_rules(deployment.settings.rules_path)
    assert before.rule_id == "large_transfer" and before.rule_set_version == shipped.version

    tier2 = shipped.config.tiers[2].model_copy(update={"large_transfer_usd": Decimal(1000)})
    tighter = shipped.config.model_copy(update={
        "version": "it-tighter", "tiers": {**shipped.config.tiers, 2: tier2}})
    await publish(deployment.settings, tighter)
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap)
    await producer.start()
    await producer.send_and_wait(deployment.topics["rules"], orjson.dumps({"version": "broken"}),
                                 key=RULE_SET_KEY, partition=0)
    await producer.stop()

    for attempt in range(20):  # the worker picks the rule set up within a second or two
        name = f"after-{attempt}"
        await deployment.produce(to_messages([_withdrawal_customer(name, "2000.00")]))
        alerts = await deployment.alerts_for(name)
        if alerts:
            break
    assert [(a.rule_id, a.rule_set_version) for a in alerts] == [
        ("large_transfer", "it-tighter")]
    metrics = deployment.metrics()
    assert metrics[("amlstream_rule_sets_rejected_total", ())] == 1
    assert metrics[("amlstream_rule_set_info", (("version", "it-tighter"),))] == 1
    assert running_worker.running


async def test_risk_level_changes_are_published_with_reasons(deployment, running_worker):
    scenario = Scenario("risk", "risk-customer", ())
    b = ScenarioBuilder(scenario)
    start = END - timedelta(days=3)
    b.onboard(start, "registered", country_of_residence="FR", nationality="FR")
    b.onboard(start + timedelta(hours=1), "kyc_verified", kyc_tier=2)
    b.onboard(start + timedelta(days=1), "screening_result", sanctions_hit=True)
    await deployment.produce(to_messages([scenario]))

    records = await deployment.read(deployment.topics["customer-risk"], lambda r: len(r) >= 2)
    changes = [RiskChange.model_validate_json(r.value) for r in records]

    # Registered (medium: not verified yet) is no assessment; verified is the initial one.
    assert [(c.previous_level, c.level.value) for c in changes] == [
        ("unrated", "low"), ("low", "high")]
    assert any("sanctions-screening hit" in reason for reason in changes[-1].reasons)
    assert {c.customer_id for c in changes} == {"risk-customer"}
    assert len({c.change_id for c in changes}) == 2
