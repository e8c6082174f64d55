"""Clients that go away: the upstream call is cancelled at once, and nothing leaks, even after a
thousand of them (sockets, file descriptors, event-loop tasks, stream slots)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.backend import UNLIMITED, BackendProcess, backend_config
from tests.support.llamastack import Combo, LlamaStackServer
from tests.support.model_server import Reply, ScriptedModel
from tests.support.net import argocd_headers
from tests.support.probe import BackendProbe
from tests.support.sse import iter_events

pytestmark = [pytest.mark.llamastack, pytest.mark.faults]

LONG_ANSWER = Reply(text=" ".join(f"word{i}" for i in range(400)), token_delay_s=0.05)
DISCONNECTS = int(os.environ.get("LEAK_DISCONNECTS", "1000"))


async def test_disconnect_cancels_the_model_call_within_a_second(
    combo: Combo, start_backend: Callable[..., BackendProcess], model: ScriptedModel
) -> None:
    backend = start_backend(backend_config(combo.llama_stack.url, combo.provider, limits=UNLIMITED))
    model.script(LONG_ANSWER)
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", f"{backend.url}/v1/chat", json={"question": "Long?"},
                                 headers=argocd_headers()) as response:
            async for event in iter_events(response):
                if event.name == "token":
                    break
        closed_at = time.monotonic()  # the connection is closed on leaving the block
    assert model.wait_for(lambda rs: bool(rs) and rs[-1].disconnected, timeout_s=10), "never cancelled"
    record = model.completions()[-1]
    assert record.finished is not None
    lag = record.finished - closed_at
    assert lag <= 1.0, f"the model saw the cancellation {lag:.2f}s after the client left"


async def _one_disconnect(client: httpx.AsyncClient, url: str, user: str, stage: int) -> str:
    """Leave at one of three points: before the response head, after `start`, after a token."""
    headers = argocd_headers(user=user)
    if stage == 0:
        try:
            async with asyncio.timeout(0.05):
                early = await client.post(f"{url}/v1/chat", json={"question": "Leave early?"}, headers=headers)
        except TimeoutError:
            return "left before the head"
        return f"HTTP {early.status_code}: {early.text[:200]}"
    async with client.stream("POST", f"{url}/v1/chat", json={"question": "Leave?"}, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            return f"HTTP {response.status_code}: {response.text[:200]}"
        async for event in iter_events(response):
            if event.name == ("start" if stage == 1 else "token"):
                return "left mid-stream"
            if event.name in ("end", "error"):
                return f"stream ended with {event.name}"
    return "stream closed early"


async def _wave(url: str, count: int, workers: int = 20) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    queue = iter(range(count))

    async def worker(index: int) -> None:
        # A fresh connection per request, as separate browser tabs would; each worker is one user.
        # A slot is given back when the backend notices the client left, which on a busy machine can
        # be after this worker's next request: a 429 here is "not yet", a leak is proven afterwards.
        for i in queue:
            async with httpx.AsyncClient(timeout=30) as client:
                outcome = await _one_disconnect(client, url, f"user{index}", i % 3)
            outcome = "not yet released (429)" if outcome.startswith(TOO_MANY) else outcome
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*(worker(i) for i in range(workers)))
    return outcomes


LEFT = {"left before the head", "left mid-stream"}
TOO_MANY = 'HTTP 429: {"error":{"code":"too_many_streams"'
BUSY = {"not yet released (429)"}


async def _every_user_has_all_its_slots(url: str, users: int, per_user: int) -> None:
    async def first_event(user: str) -> str:
        async with httpx.AsyncClient(timeout=30) as client:
            headers = argocd_headers(user=user)
            async with client.stream("POST", f"{url}/v1/chat", json={"question": "Free?"}, headers=headers) as r:
                if r.status_code != 200:
                    await r.aread()
                    return f"HTTP {r.status_code}: {r.text[:120]}"
                async for event in iter_events(r):
                    return event.name
        return "closed"

    results = await asyncio.gather(*(first_event(f"user{u}") for u in range(users) for _ in range(per_user)))
    assert set(results) == {"start"}, results


def _quiescent(probe: BackendProbe, timeout_s: float = 60) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    previous = None
    while time.monotonic() < deadline:
        snapshot = probe.snapshot()
        if snapshot["active_streams"] == 0 and previous is not None and snapshot["tasks"] == previous["tasks"]:
            return snapshot
        previous = snapshot
        time.sleep(1)
    raise AssertionError(f"the backend did not settle: {probe.snapshot()}")


@pytest.mark.timeout(900)
async def test_a_thousand_disconnects_leak_nothing(
    llama_stack_073: LlamaStackServer, start_backend: Callable[..., BackendProcess], model: ScriptedModel,
    artifacts_dir: Path,
) -> None:
    backend = start_backend(backend_config(llama_stack_073.url, "responses",
                                           limits={"requests_per_minute": 0, "max_streams_per_user": 2}))
    model.set_default(LONG_ANSWER)
    probe = BackendProbe(backend)

    warm = await _wave(backend.url, 60)
    assert set(warm) <= LEFT | BUSY, warm
    assert model.wait_for(lambda rs: all(r.finished for r in rs), timeout_s=60)
    before = _quiescent(probe)

    outcomes = await _wave(backend.url, DISCONNECTS)
    assert model.wait_for(lambda rs: all(r.finished for r in rs), timeout_s=90), "model calls left running"
    after = _quiescent(probe)
    records = model.completions()
    cancelled = sum(r.disconnected for r in records)
    (artifacts_dir / "disconnect-leaks.json").write_text(json.dumps(
        {"disconnects": DISCONNECTS, "outcomes": outcomes, "before": before, "after": after,
         "model_calls": len(records), "model_calls_cancelled": cancelled}, indent=2))

    assert set(outcomes) <= LEFT | BUSY, outcomes
    # Most requests were really admitted and left (a backend that never freed slots would 429 nearly all).
    assert outcomes.get("left before the head", 0) + outcomes.get("left mid-stream", 0) >= DISCONNECTS * 0.5
    assert after["active_streams"] == 0
    # No slot leaked: once the backend has settled, every one of the users holds none, so each can
    # open its whole allowance of streams at once.
    await _every_user_has_all_its_slots(backend.url, users=20, per_user=2)
    assert after["served_close_wait"] == 0, "a client's connection was never closed by the backend"
    assert after["upstream_close_wait"] <= before["upstream_close_wait"] + 10, (before, after)
    assert after["tasks"] <= before["tasks"] + 3, (before, after)
    assert after["fds"] <= before["fds"] + 10, (before, after)
    assert after["tcp"] <= before["tcp"] + 10, (before, after)
    # Every model call that was still generating when its client left was cancelled, none completed.
    assert all(r.disconnected for r in records if r.finished and r.finished - r.started < 15)
