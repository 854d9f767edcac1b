"""The cache of ended tasks' details: entries expire, the oldest goes first, a forgotten task is read anew."""

import time

from orchestrator.detail_cache import TaskDetailCache


def test_an_entry_is_served_until_it_expires() -> None:
    cache = TaskDetailCache(ttl=0.2)
    cache.put("task_a", b'{"a": 1}')

    assert cache.get("task_a") == b'{"a": 1}'
    time.sleep(0.25)
    assert cache.get("task_a") is None


def test_a_forgotten_task_is_gone() -> None:
    cache = TaskDetailCache()
    cache.put("task_a", b"a")
    cache.put("task_b", b"b")

    cache.forget("task_a")
    cache.forget("task_never_cached")

    assert (cache.get("task_a"), cache.get("task_b")) == (None, b"b")


def test_when_full_the_oldest_entry_makes_room() -> None:
    cache = TaskDetailCache(max_entries=2)
    cache.put("task_a", b"a")
    cache.put("task_b", b"b")
    cache.put("task_a", b"a2")  # stored anew: now the newest

    cache.put("task_c", b"c")

    assert (cache.get("task_a"), cache.get("task_b"), cache.get("task_c")) == (b"a2", None, b"c")
