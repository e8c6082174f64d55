"""Readiness: Llama Stack answers, runs a version this provider supports, and lists a model.

The probe result is reused for a few seconds so that kubelet probes and bursts of /readyz calls
don't turn into a stream of requests to Llama Stack; concurrent callers share one probe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from .catalogue import ModelCatalogue
from .errors import ApiError
from .metrics import Metrics
from .providers.base import Provider

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Status:
    ready: bool
    reason: str
    version: str | None = None


class Readiness:
    def __init__(
        self, provider: Provider, catalogue: ModelCatalogue, metrics: Metrics, cache_s: float
    ) -> None:
        self._provider = provider
        self._catalogue = catalogue
        self._metrics = metrics
        self._cache_s = cache_s
        self._last: Status | None = None
        self._checked_at = 0.0
        self._lock = asyncio.Lock()

    async def status(self) -> Status:
        async with self._lock:
            if self._last is not None and time.monotonic() - self._checked_at < self._cache_s:
                return self._last
            status = await self._probe()
            if self._last is None or status.ready != self._last.ready:
                log.log(logging.INFO if status.ready else logging.WARNING, "readiness: %s", status.reason)
            self._last, self._checked_at = status, time.monotonic()
            self._metrics.ready.set(1 if status.ready else 0)
            return status

    async def _probe(self) -> Status:
        try:
            async with asyncio.timeout(8):
                info = await self._provider.probe()
                await self._catalogue.default()
        except ApiError as exc:
            return Status(False, exc.message)
        except TimeoutError:
            return Status(False, "Llama Stack did not answer the readiness probe in time")
        return Status(
            True, f"Llama Stack {info.version} ready for provider {self._provider.name}", info.version
        )
