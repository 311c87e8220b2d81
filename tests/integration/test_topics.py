"""The worker's set-up creates every topic before Faust starts, the tables' changelogs
included: a changelog Faust created at start could be missing from a worker's first metadata,
left unassigned, and so never recovered when that worker took over partitions (a failover
lost the counterparty states of the partitions it took over)."""

from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from agents.topics import changelog_topics, ensure_topics

pytestmark = pytest.mark.integration


async def test_changelogs_exist_compacted_with_a_partition_per_input_partition(
        deployment: Any) -> None:
    settings = deployment.settings.model_copy(update={
        "app_id": deployment.name, "partitions": 3, "network": True})
    changelogs = changelog_topics(settings)
    assert changelogs == [f"{deployment.name}-{table}-changelog"
                          for table in ("customer-state", "counterparty-state", "flow-state")]
    await ensure_topics(settings)
    await ensure_topics(settings)  # a second worker's set-up finds them there
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: len(t["partitions"])
                     for t in await admin.describe_topics(changelogs)}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in changelogs])
    finally:
        await admin.close()
    assert described == dict.fromkeys(changelogs, 3)
    policies = {resource[3]: {entry[0]: entry[1] for entry in resource[4]}["cleanup.policy"]
                for response in configs for resource in response.resources}
    assert policies == dict.fromkeys(changelogs, "compact")
