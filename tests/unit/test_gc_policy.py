"""The collector policy (assistant_backend/gc_policy.py): what it decides, on a recording collector
and a hand-moved clock, and that on the real collector it leaves the oldest generation alone while
streams are open yet still frees reference cycles."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from assistant_backend.gc_policy import OLDEST_OFF, GcSettings, ProcessGc, StreamGc


class Recorder:
    """A collector that records calls instead of collecting."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threshold = (700, 10, 10)

    def collect(self, generation: int = 2) -> int:
        self.calls.append(f"collect{generation}")
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, threshold0: int, threshold1: int, threshold2: int) -> None:
        self.threshold = (threshold0, threshold1, threshold2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = GcSettings(idle_s=1.0, max_interval_s=60.0)


@pytest.fixture
def policy() -> tuple[StreamGc, Recorder, Clock]:
    recorder, clock = Recorder(), Clock()
    return StreamGc(SETTINGS, recorder, clock), recorder, clock


def test_start_freezes_start_up_and_takes_the_oldest_generation_over(policy: tuple[StreamGc, Recorder, Clock]) -> None:
    gc_, recorder, _ = policy
    gc_.start()
    assert recorder.calls == ["collect2", "freeze"]
    assert recorder.threshold == (700, 10, OLDEST_OFF)
    gc_.stop()
    assert recorder.threshold == (700, 10, 10) and recorder.calls[-1] == "unfreeze"


def test_no_full_collection_while_streams_are_open_until_the_bound(policy: tuple[StreamGc, Recorder, Clock]) -> None:
    gc_, recorder, clock = policy
    gc_.start()
    recorder.calls.clear()
    gc_.opened()
    gc_.opened()
    for _ in range(59):
        clock.now += 1.0
        assert gc_.tick() is None
    gc_.closed()  # one still open: not idle
    clock.now += 5.0
    assert gc_.tick() == "bounded"
    assert recorder.calls == ["collect2"]  # the unfrozen objects only: no unfreeze under load
    clock.now += 30.0
    assert gc_.tick() is None  # the bound counts from the last full collection


def test_idle_after_turns_collects_everything_and_freezes_the_survivors(
    policy: tuple[StreamGc, Recorder, Clock],
) -> None:
    gc_, recorder, clock = policy
    gc_.start()
    recorder.calls.clear()
    gc_.opened()
    clock.now += 3.0
    gc_.closed()
    clock.now += 0.5
    assert gc_.tick() is None  # idle, but not for idle_s yet
    gc_.opened()  # a new stream: not idle after all
    clock.now += 2.0
    assert gc_.tick() is None
    gc_.closed()
    clock.now += 1.0
    assert gc_.tick() == "idle"
    assert recorder.calls == ["unfreeze", "collect2", "freeze"]
    clock.now += 100.0
    assert gc_.tick() is None  # nothing ran since: nothing to collect, however long it stays idle
    assert recorder.calls == ["unfreeze", "collect2", "freeze"]


def test_an_idle_process_that_served_nothing_never_collects(policy: tuple[StreamGc, Recorder, Clock]) -> None:
    gc_, recorder, clock = policy
    gc_.start()
    recorder.calls.clear()
    for _ in range(10):
        clock.now += 100.0
        assert gc_.tick() is None
    assert recorder.calls == []


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def real_policy() -> Iterator[StreamGc]:
    saved = gc.get_threshold()
    clock = Clock()
    policy = StreamGc(SETTINGS, ProcessGc(), clock)
    policy.start()
    try:
        yield policy
    finally:
        policy.stop()
        assert gc.get_threshold() == saved and gc.get_freeze_count() == 0


def test_on_the_real_collector_a_cycle_waits_for_the_policy(real_policy: StreamGc) -> None:
    assert gc.get_threshold()[2] == OLDEST_OFF and gc.get_freeze_count() > 0
    real_policy.opened()
    cycle = Cycle()
    gone = weakref.ref(cycle)
    gc.collect(1)  # the cycle is old now: the young collections no longer look at it
    del cycle
    for _ in range(5):  # allocations that run the automatic (young) collections many times over
        [[i] for i in range(100_000)]
    assert gone() is not None, "the oldest generation was collected while a stream was open"
    real_policy._clock.now += SETTINGS.max_interval_s  # type: ignore[attr-defined]
    assert real_policy.tick() == "bounded"
    assert gone() is None


def test_on_the_real_collector_idle_frees_a_cycle_frozen_earlier(real_policy: StreamGc) -> None:
    cycle = Cycle()
    gone = weakref.ref(cycle)
    real_policy.opened()
    real_policy.closed()
    real_policy._clock.now += SETTINGS.idle_s  # type: ignore[attr-defined]
    assert real_policy.tick() == "idle"  # the cycle is alive: frozen with the survivors
    del cycle
    gc.collect()  # a full collection does not look at frozen objects
    assert gone() is not None
    real_policy.opened()
    real_policy.closed()
    real_policy._clock.now += SETTINGS.idle_s  # type: ignore[attr-defined]
    assert real_policy.tick() == "idle"
    assert gone() is None


class FailingCollector(Recorder):
    def collect(self, generation: int = 2) -> int:
        if self.calls:  # start-up's collection works, a later one fails
            raise RuntimeError("collector broke")
        return super().collect(generation)


async def test_a_failing_policy_gives_the_collector_its_thresholds_back() -> None:
    collector, clock = FailingCollector(), Clock()
    gc_ = StreamGc(GcSettings(idle_s=0.0, max_interval_s=60.0, check_s=0.0), collector, clock)
    gc_.start()
    assert collector.threshold[2] == OLDEST_OFF
    gc_.opened()
    gc_.closed()  # a turn ended and nothing is open: the next look collects, and fails
    await gc_.run()  # returns instead of looping: the policy is over
    assert collector.threshold == (700, 10, 10)
    assert collector.calls[-1] == "unfreeze"
