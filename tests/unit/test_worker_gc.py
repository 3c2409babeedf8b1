"""The worker's collector settings: boot's heap frozen, a higher first threshold."""

from __future__ import annotations

import gc

import pytest

from gproxy import worker


@pytest.fixture
def restored_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_what_boot_built_is_frozen_and_young_collections_are_rarer(restored_gc):
    _, gen1, gen2 = gc.get_threshold()
    built_at_boot = [[n] for n in range(100)]  # tracked containers, alive as a worker's state
    worker._freeze_heap()
    assert gc.get_freeze_count() >= len(built_at_boot)
    assert gc.get_threshold() == (worker.GC_GEN0_THRESHOLD, gen1, gen2)
    assert gc.isenabled()  # reference cycles are still collected


def test_cycles_made_after_boot_are_still_collected(restored_gc):
    worker._freeze_heap()

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
