"""When the garbage collector may stop the event loop: between streams, not in the middle of them.

Why a policy: every open stream holds a few hundred tracked objects (its tasks, generators, the
upstream response), and CPython's automatic collection of the oldest generation walks all of them
plus everything the process imported (the OpenAI SDK's types alone are hundreds of thousands). At
500 open streams such a full collection took 105-140 ms of the one event loop (README,
"Benchmarks"), stalling every stream at once: that was the relay's p99 inter-token gap. Freezing
the start-up objects alone does not help: CPython runs a full collection once a quarter as many
objects as the last one kept have been promoted since, and with the imports frozen that quarter is
small, so the (cheaper) full collections come more often and still stall every open stream.

The policy (:class:`StreamGc`):
- at start-up, one collection and ``gc.freeze()``: what start-up built (modules, types, clients)
  leaves every later collection's walk;
- the oldest generation is never collected automatically (its threshold is raised out of reach);
  the young generations are, as usual: they only walk what was allocated recently, and most of a
  stream's garbage is freed by reference counting anyway;
- when no stream has been open for ``idle_s`` after some turns, a full collection of everything
  (``gc.unfreeze()`` first, so something frozen earlier that became garbage since is found) and a
  new ``gc.freeze()`` of what survived: the first one also freezes what the first turns built
  lazily (the warm-up). Nobody is waiting on the loop then;
- a server that is never idle still gets a full collection of the unfrozen objects every
  ``max_interval_s``, so reference cycles (anyio's cancellations make some per stream) cannot
  grow memory without bound; that one stalls the open streams, once a minute instead of every
  few seconds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

# A threshold the count of young collections never reaches: the oldest generation is left to the policy.
OLDEST_OFF = 1 << 30


class Collector(Protocol):
    """What the policy needs of :mod:`gc` (a seam, so tests can check decisions without collecting)."""

    def collect(self, generation: int = 2) -> int: ...
    def freeze(self) -> None: ...
    def unfreeze(self) -> None: ...
    def get_threshold(self) -> tuple[int, int, int]: ...
    def set_threshold(self, threshold0: int, threshold1: int, threshold2: int) -> None: ...


class ProcessGc:
    """The interpreter's collector."""

    def collect(self, generation: int = 2) -> int:
        return gc.collect(generation)

    def freeze(self) -> None:
        gc.freeze()

    def unfreeze(self) -> None:
        gc.unfreeze()

    def get_threshold(self) -> tuple[int, int, int]:
        return gc.get_threshold()

    def set_threshold(self, threshold0: int, threshold1: int, threshold2: int) -> None:
        gc.set_threshold(threshold0, threshold1, threshold2)


@dataclass(frozen=True, slots=True)
class GcSettings:
    idle_s: float = 1.0  # no stream open this long: the loop is idle, a full collection costs no one
    max_interval_s: float = 60.0  # a full collection at least this often even when never idle
    check_s: float = 0.5  # how often the policy looks


class StreamGc:
    """The collector policy of one streaming process; ``opened``/``closed`` bracket every stream."""

    def __init__(
        self,
        settings: GcSettings | None = None,
        collector: Collector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or GcSettings()
        self._gc = collector or ProcessGc()
        self._clock = clock
        self._open = 0
        self._turns_since_full = 0  # streams that ended since the last full collection
        self._last_full = clock()
        self._idle_since: float | None = clock()
        self._saved: tuple[int, int, int] | None = None

    @property
    def open_streams(self) -> int:
        return self._open

    def start(self) -> None:
        """After start-up: collect once, freeze what is left, and take the oldest generation over."""
        self._saved = self._gc.get_threshold()
        self._gc.collect(2)
        self._gc.freeze()
        young, middle, _ = self._saved
        self._gc.set_threshold(young, middle, OLDEST_OFF)
        self._last_full = self._clock()

    def stop(self) -> None:
        """Give the collector back its own thresholds (and the frozen objects)."""
        if self._saved is not None:
            self._gc.set_threshold(*self._saved)
            self._gc.unfreeze()
            self._saved = None

    def opened(self) -> None:
        self._open += 1
        self._idle_since = None

    def closed(self) -> None:
        self._open -= 1
        self._turns_since_full += 1
        if self._open == 0:
            self._idle_since = self._clock()

    def tick(self) -> str | None:
        """Collect if it is time; returns what was done ("idle", "bounded") for logs and tests."""
        now = self._clock()
        if self._open == 0:
            if (
                self._turns_since_full
                and self._idle_since is not None
                and now - self._idle_since >= self.settings.idle_s
            ):
                self._gc.unfreeze()
                self._gc.collect(2)
                self._gc.freeze()
                self._full_done(now)
                return "idle"
            return None
        if now - self._last_full >= self.settings.max_interval_s:
            self._gc.collect(2)  # only what is not frozen: the open streams and their garbage
            self._full_done(now)
            return "bounded"
        return None

    def _full_done(self, now: float) -> None:
        self._last_full = now
        self._turns_since_full = 0

    async def run(self) -> None:
        """Look every ``check_s`` until cancelled. Should a look fail, the collector gets its own
        thresholds back: a dead policy must not leave the oldest generation uncollected forever."""
        while True:
            await asyncio.sleep(self.settings.check_s)
            started = time.perf_counter()
            try:
                done = self.tick()
            except Exception:
                log.exception("collector policy failed; the interpreter's own thresholds are back")
                self.stop()
                return
            if done:
                log.debug(
                    "full collection (%s) in %.1f ms, %d streams open",
                    done,
                    (time.perf_counter() - started) * 1000,
                    self._open,
                )
