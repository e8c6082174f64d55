"""Per-user admission for ``POST /v1/chat``: a request rate limit and a cap on concurrent streams.

Both are in-process. The backend is stateless and may run as several replicas, so the limits are per
replica: they exist to stop one user (or one runaway browser tab) from monopolising a replica and the
model behind it, not to meter usage exactly. A request is counted against *each* identity header it
carries (the username and the user id, see ``Caller.limit_keys``): whichever of the two this Argo CD
version sets itself, a browser cannot add a fresh value of the other to escape its limit.

- Rate: a token bucket per user holding ``requests_per_minute`` tokens, refilled continuously, so a
  user may burst up to the whole minute's allowance and then continue at the steady rate. A refused
  request gets 429 ``rate_limited`` with ``Retry-After`` (whole seconds until a token is back).
- Streams: at most ``max_streams_per_user`` answers streaming at once; the next is 429
  ``too_many_streams``. The slot is released however the stream ends: completed, failed, client
  disconnect, or a failure before the first byte (the turn's resources, closed by
  ``stream.TurnResponse``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import LimitsConfig
from .errors import ApiError, ErrorCode

Clock = Callable[[], float]

# Idle buckets are dropped on a sweep at most this often; a dropped bucket was full anyway.
_SWEEP_INTERVAL_S = 60.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per key: ``per_minute`` capacity, refilled at ``per_minute / 60`` tokens a second."""

    def __init__(self, per_minute: int, clock: Clock = time.monotonic) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._swept = clock()

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def take(self, *keys: str) -> None:
        """Spend one token from every key's bucket, or none and raise 429 ``rate_limited`` with
        ``Retry-After`` when one of them is empty."""
        if not self.enabled:
            return
        now = self._clock()
        self._sweep(now)
        buckets = []
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self._capacity, now)
            else:
                bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
                bucket.updated = now
            buckets.append(bucket)
        short = [b for b in buckets if b.tokens < 1.0]
        if not short:
            for bucket in buckets:
                bucket.tokens -= 1.0
            return
        retry_after = max(1, math.ceil((1.0 - min(b.tokens for b in short)) / self._rate))
        raise ApiError(
            ErrorCode.RATE_LIMITED,
            f"too many requests: at most {int(self._capacity)} a minute; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    def _sweep(self, now: float) -> None:
        # Bounds memory to the users active in the last minute or so.
        if now - self._swept < _SWEEP_INTERVAL_S:
            return
        self._swept = now
        refill_s = self._capacity / self._rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= refill_s]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class StreamSlot:
    """One admitted stream; :meth:`release` may be called any number of times, it counts once."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class StreamCap:
    """At most ``per_user`` concurrent streams per key (0 = unlimited)."""

    def __init__(self, per_user: int) -> None:
        self._per_user = per_user
        self._open: dict[str, int] = {}

    def check(self, key: str) -> None:
        """Raise 429 ``too_many_streams`` if ``key`` has no free slot."""
        if self._per_user and self._open.get(key, 0) >= self._per_user:
            raise ApiError(
                ErrorCode.TOO_MANY_STREAMS,
                f"too many answers in progress: at most {self._per_user} at once; wait for one to finish",
            )

    def acquire(self, key: str) -> StreamSlot:
        self.check(key)
        self._open[key] = self._open.get(key, 0) + 1
        return StreamSlot(lambda: self._release(key))

    def _release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def open_streams(self, key: str) -> int:
        return self._open.get(key, 0)

    def __len__(self) -> int:
        return len(self._open)


class UserLimits:
    """Admission for one chat request: the stream cap first (a refused request spends no token)."""

    def __init__(self, config: LimitsConfig, clock: Clock = time.monotonic) -> None:
        self.rate = RateLimiter(config.requests_per_minute, clock)
        self.streams = StreamCap(config.max_streams_per_user)

    def admit(self, *keys: str) -> StreamSlot:
        """Raise 429 (``too_many_streams`` or ``rate_limited``) or return the stream slot to hold,
        counted against every key."""
        for key in keys:
            self.streams.check(key)
        self.rate.take(*keys)
        slots = [self.streams.acquire(key) for key in keys]

        def release() -> None:
            for slot in slots:
                slot.release()

        return StreamSlot(release)
