import pytest

from shared.redis import RedisKeys


def test_key_is_namespaced_by_tenant() -> None:
    keys = RedisKeys("acme")

    assert keys.key("agent_tasks") == "mats:acme:agent_tasks"
    assert keys.inflight("agent_tasks", "orchestrator-1") == "mats:acme:agent_tasks:inflight:orchestrator-1"
    assert keys.state("task_1", "summary") == "mats:acme:state:task_1:summary"
    assert keys.agent("agent1") == "mats:acme:agent:agent1"


def test_two_tenants_never_share_a_key() -> None:
    assert RedisKeys("acme").key("agent_tasks") != RedisKeys("globex").key("agent_tasks")


def test_pattern_covers_the_tenant_or_one_family() -> None:
    keys = RedisKeys("acme")

    assert keys.pattern() == "mats:acme:*"
    assert keys.pattern("state", "task_1") == "mats:acme:state:task_1:*"


@pytest.mark.parametrize("part", ["", "a:b", "task*", "x?", "[ab]", "with space", "a\nb", "é", "x" * 129])
def test_unsafe_parts_are_refused(part: str) -> None:
    with pytest.raises(ValueError, match="invalid key part"):
        RedisKeys("acme").key("state", part)


@pytest.mark.parametrize("tenant", ["", "a:b", "*"])
def test_unsafe_tenant_is_refused(tenant: str) -> None:
    with pytest.raises(ValueError, match="invalid tenant id"):
        RedisKeys(tenant)


def test_a_key_needs_a_part() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        RedisKeys("acme").key()
