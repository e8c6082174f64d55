"""Readiness: Llama Stack answers, runs a version this provider supports, and lists a model.

The probe result is reused for a few seconds so that kubelet probes and bursts of /readyz calls
don't turn into a stream of requests to Llama Stack; concurrent callers share one probe.

Supported versions, per provider (README "Supported Llama Stack versions"; docs/upstream-facts.md,
Llama Stack): ``agents`` needs 0.2.x or 0.3.x (the Agents API is gone from 0.4 on); ``responses``
works from 0.2.x (at ``/v1/openai/v1``) through 0.7.x and OGX, Llama Stack's renamed successor, whose
versions continue the same numbering (0.8 to 1.x). The contract suite runs the edges (0.2.24, 0.3.5,
0.7.3, OGX 1.5.0); a server outside the range is refused by name rather than failing mid-answer.
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
from .providers.llamastack import Version

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SupportedRange:
    lowest: tuple[int, int]  # (major, minor), inclusive
    below: tuple[int, int]  # (major, minor), exclusive
    text: str

    def admits(self, version: Version) -> bool:
        return self.lowest <= (version.major, version.minor) < self.below


SUPPORTED: dict[str, SupportedRange] = {
    "agents": SupportedRange((0, 2), (0, 4), "Llama Stack 0.2.x or 0.3.x"),
    "responses": SupportedRange((0, 2), (2, 0), "Llama Stack 0.2.x to 0.7.x, or OGX 0.8 to 1.x"),
}


def version_refusal(provider: str, version: Version) -> str | None:
    """Why ``provider`` cannot use a server running ``version``, or None when it can."""
    supported = SUPPORTED.get(provider)
    if supported is None or supported.admits(version):
        return None
    hint = "; use provider: responses" if provider == "agents" and version.at_least(0, 4) else ""
    return f"provider {provider!r} supports {supported.text}, but the server runs {version.text}{hint}"


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
                refusal = version_refusal(self._provider.name, Version.parse(info.version))
                if refusal is not None:
                    return Status(False, refusal, info.version)
                await self._catalogue.default()
        except ApiError as exc:
            return Status(False, exc.message)
        except TimeoutError:
            return Status(False, "Llama Stack did not answer the readiness probe in time")
        return Status(
            True, f"Llama Stack {info.version} ready for provider {self._provider.name}", info.version
        )
