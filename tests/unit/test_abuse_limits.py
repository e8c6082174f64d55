"""The admission rules in isolation, on a fake clock."""

from __future__ import annotations

import pytest

from assistant_backend.config import LimitsConfig
from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.limits import RateLimiter, StreamCap, UserLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(action: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        action()  # type: ignore[operator]
    return caught.value


def test_bucket_allows_a_burst_then_the_steady_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(6, clock)  # 6 a minute: one every 10 s
    for _ in range(6):
        limiter.take("alice")
    error = refused(lambda: limiter.take("alice"))
    assert error.code is ErrorCode.RATE_LIMITED and error.status == 429
    assert error.headers["Retry-After"] == "10"
    clock.now += 4
    assert refused(lambda: limiter.take("alice")).headers["Retry-After"] == "6"
    clock.now += 6
    limiter.take("alice")  # one token back after 10 s
    refused(lambda: limiter.take("alice"))
    limiter.take("bob")  # users have their own buckets


def test_bucket_never_exceeds_its_capacity() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock)
    clock.now += 3600
    limiter.take("alice")
    limiter.take("alice")
    refused(lambda: limiter.take("alice"))


def test_zero_means_unlimited_and_idle_buckets_are_dropped() -> None:
    clock = Clock()
    unlimited = RateLimiter(0, clock)
    for _ in range(1000):
        unlimited.take("alice")
    limiter = RateLimiter(60, clock)
    for user in range(500):
        limiter.take(f"user-{user}")
    assert len(limiter) == 500
    clock.now += 61
    limiter.take("alice")
    assert len(limiter) == 1


def test_stream_cap_and_idempotent_release() -> None:
    cap = StreamCap(2)
    first, second = cap.acquire("alice"), cap.acquire("alice")
    error = refused(lambda: cap.acquire("alice"))
    assert error.code is ErrorCode.TOO_MANY_STREAMS and error.status == 429
    cap.acquire("bob").release()
    first.release()
    first.release()  # a second release must not free someone else's slot
    assert cap.open_streams("alice") == 1
    third = cap.acquire("alice")
    refused(lambda: cap.acquire("alice"))
    second.release()
    third.release()
    assert len(cap) == 0


def test_refused_stream_spends_no_token() -> None:
    clock = Clock()
    limits = UserLimits(LimitsConfig(requests_per_minute=2, max_streams_per_user=1), clock)
    slot = limits.admit("alice")
    for _ in range(5):
        assert refused(lambda: limits.admit("alice")).code is ErrorCode.TOO_MANY_STREAMS
    slot.release()
    limits.admit("alice").release()  # the second token is still there
    assert refused(lambda: limits.admit("alice")).code is ErrorCode.RATE_LIMITED


def test_a_request_counts_against_every_identity_key_or_none() -> None:
    limiter = RateLimiter(2, Clock())
    limiter.take("username:mallory", "user-id:forged-1")
    limiter.take("username:mallory", "user-id:forged-2")
    # A fresh forged id does not help: the username's bucket is empty.
    error = refused(lambda: limiter.take("username:mallory", "user-id:forged-3"))
    assert error.code is ErrorCode.RATE_LIMITED
    # A refusal spends nothing: forged-3's bucket is still full.
    limiter.take("user-id:forged-3")
    limiter.take("user-id:forged-3")


def test_streams_are_capped_per_identity_key_and_all_released_together() -> None:
    limits = UserLimits(LimitsConfig(requests_per_minute=0, max_streams_per_user=1))
    slot = limits.admit("username:mallory", "user-id:a")
    with pytest.raises(ApiError) as raised:
        limits.admit("username:mallory", "user-id:b")
    assert raised.value.code is ErrorCode.TOO_MANY_STREAMS
    slot.release()
    assert limits.streams.open_streams("username:mallory") == 0 and limits.streams.open_streams("user-id:a") == 0
    limits.admit("username:mallory", "user-id:b")
