"""Recording the API calls the context engine makes, to count its dependent round trips.

Every request through ``KubeClient._request`` is recorded with its start and end on one clock: a
counter by default (tests count, never time), ``time.perf_counter`` for the benchmark. A call's depth
is one more than the deepest call that had answered before it started; the deepest is the number of
dependent stages. Behind the delay relay (pipelined latency) calls issued together stay in flight
together, so that number is the build's round trips.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from assistant_backend.context import control_cache
from assistant_backend.context import kube as kube_client


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    params: dict[str, str]
    start: float
    end: float


@dataclass
class KubeCalls:
    made: list[Call] = field(default_factory=list)

    def depth(self) -> int:
        """The longest chain of calls each started after the one before it had answered."""
        ordered = sorted(self.made, key=lambda c: c.start)
        depths: list[int] = []
        for i, call in enumerate(ordered):
            depths.append(1 + max((depths[j] for j in range(i) if ordered[j].end <= call.start), default=0))
        return max(depths, default=0)

    def in_order(self) -> list[str]:
        """The paths by start: what an assertion shows when a count is off."""
        return [c.path for c in sorted(self.made, key=lambda c: c.start)]

    def in_namespace(self, namespace: str) -> list[Call]:
        """Destination reads in ``namespace`` (not the Application, nor its own events)."""
        return [
            c
            for c in self.made
            if f"/namespaces/{namespace}/" in c.path
            and "argoproj.io" not in c.path
            and "kind=Application" not in c.params.get("fieldSelector", "")
        ]


@contextmanager
def recording_kube_calls(clock: Callable[[], float] | None = None) -> Iterator[KubeCalls]:
    """Record every engine API call while the block runs (a cancelled call too); the control-plane
    cache's own client (its lists, in the background) is left out."""
    sequence = itertools.count()
    now = clock or (lambda: float(next(sequence)))
    recorded = KubeCalls()
    original = kube_client.KubeClient._request

    async def recording(self: kube_client.KubeClient, path: str, params: Any = None) -> httpx.Response:
        if self.name == control_cache.CLIENT_NAME:  # the control-plane cache relisting beside the build: not the build's
            return await original(self, path, params)
        start = now()
        try:
            return await original(self, path, params)
        finally:
            recorded.made.append(Call(path, dict(params or {}), start, now()))

    kube_client.KubeClient._request = recording  # type: ignore[method-assign]
    try:
        yield recorded
    finally:
        kube_client.KubeClient._request = original  # type: ignore[method-assign]
