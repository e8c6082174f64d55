"""Soak: mixed traffic at 100 concurrent streams for 10 minutes; no errors, flat memory.

``SOAK_SECONDS`` (default 600) and ``SOAK_STREAMS`` (default 100) size it for local runs. The RSS of
the backend is sampled every few seconds; the slope after a warm-up is reported in
``test-artifacts/soak.json`` and must project to less than ``SOAK_MAX_GROWTH_MB`` over the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.backend import UNLIMITED, BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.metrics import metrics_once
from tests.support.model_server import Reply, ScriptedModel
from tests.support.net import argocd_headers
from tests.support.sse import iter_events

pytestmark = [pytest.mark.llamastack, pytest.mark.soak, pytest.mark.timeout(0)]

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
STREAMS = int(os.environ.get("SOAK_STREAMS", "100"))
MAX_GROWTH_MB = float(os.environ.get("SOAK_MAX_GROWTH_MB", "10"))
SAMPLE_EVERY_S = 5.0
TOKEN_DELAY_S = float(os.environ.get("SOAK_TOKEN_DELAY_S", "0.25"))
RESOURCES = [
    None,
    {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web"},
    {"group": "", "version": "v1", "kind": "Pod", "namespace": "shop", "name": "web-7d9c-x2"},
]


def headers(user: str) -> dict[str, str]:
    return argocd_headers(user=user)


class Traffic:
    """One simulated user per worker, doing what users of the panel do, with a tally of outcomes."""

    def __init__(self, url: str, seed: int) -> None:
        self.url = url
        self.random = random.Random(seed)
        self.outcomes: Counter[str] = Counter()
        self.errors: list[str] = []

    async def chat(self, client: httpx.AsyncClient, user: str, conversation: str | None, *,
                   leave_after_token: bool = False) -> str | None:
        body: dict[str, object] = {"question": f"Why is it broken? ({self.random.random():.6f})"}
        if conversation:
            body["conversation_id"] = conversation
        elif (resource := self.random.choice(RESOURCES)) is not None:
            body["resource"] = resource
        async with client.stream("POST", f"{self.url}/v1/chat", json=body, headers=headers(user)) as response:
            if response.status_code != 200:
                await response.aread()
                self.errors.append(f"chat HTTP {response.status_code}: {response.text[:200]}")
                return None
            async for event in iter_events(response):
                if event.name == "token" and leave_after_token:
                    self.outcomes["left mid-stream"] += 1
                    return None
                if event.name == "error":
                    self.errors.append(f"error event: {event.data}")
                    return None
                if event.name == "end":
                    self.outcomes["follow-up" if conversation else "new conversation"] += 1
                    return str(event.data["conversation_id"])
        self.errors.append("stream closed without end or error")
        return None

    async def user(self, index: int, stop_at: float) -> None:
        user = f"soak-user-{index}"
        conversation: str | None = None
        async with httpx.AsyncClient(timeout=httpx.Timeout(120)) as client:
            while time.monotonic() < stop_at:
                roll = self.random.random()
                try:
                    if roll < 0.55 or conversation is None:
                        conversation = await self.chat(client, user, None) or conversation
                    elif roll < 0.75:
                        conversation = await self.chat(client, user, conversation) or conversation
                    elif roll < 0.85:
                        await self.chat(client, user, None, leave_after_token=True)
                    elif roll < 0.93:
                        response = await client.get(f"{self.url}/v1/conversations/{conversation}",
                                                    headers=headers(user))
                        self._expect(response, "restore")
                    else:
                        self._expect(await client.get(f"{self.url}/v1/models", headers=headers(user)), "models")
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    def _expect(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 200:
            self.outcomes[what] += 1
        else:
            self.errors.append(f"{what} HTTP {response.status_code}: {response.text[:200]}")


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 60 if var else 0.0


async def test_soak_mixed_traffic(llama_stack_073: LlamaStackServer, start_backend: Callable[..., BackendProcess],
                                  model: ScriptedModel, artifacts_dir: Path) -> None:
    backend = start_backend(backend_config(llama_stack_073.url, "responses", llama_stack={"timeout_s": 120},
                                           limits=UNLIMITED,
                                           server={"log_level": "warning"}))
    # Long answers at a readable pace: 100 streams stay open while Llama Stack sees ~10 new turns a
    # second; its SQLite stores (the test config) fail above a few dozen a second on 2 cores.
    model.set_default(Reply(text=" ".join(f"t{i}" for i in range(40)), token_delay_s=TOKEN_DELAY_S))
    process = psutil.Process(backend.pid)
    traffic = Traffic(backend.url, seed=int(os.environ.get("SOAK_SEED", "7")))
    started = time.monotonic()
    stop_at = started + SECONDS
    samples: list[tuple[float, float]] = []

    async def sample() -> None:
        while time.monotonic() < stop_at:
            samples.append((time.monotonic() - started, process.memory_info().rss / 2**20))
            await asyncio.sleep(SAMPLE_EVERY_S)

    await asyncio.gather(sample(), *(traffic.user(i, stop_at) for i in range(STREAMS)))

    warm = [s for s in samples if s[0] >= SECONDS * 0.2]
    slope = slope_mb_per_min(warm) if len(warm) >= 3 else 0.0
    window_min = (warm[-1][0] - warm[0][0]) / 60 if len(warm) >= 2 else 0.0
    report = {
        "seconds": SECONDS, "streams": STREAMS, "outcomes": dict(traffic.outcomes), "errors": traffic.errors[:50],
        "error_count": len(traffic.errors), "rss_mb_first": samples[0][1], "rss_mb_last": samples[-1][1],
        "rss_mb_max": max(m for _, m in samples), "rss_slope_mb_per_min_after_warmup": round(slope, 3),
        "samples": [(round(t, 1), round(m, 2)) for t, m in samples],
    }
    (artifacts_dir / "soak.json").write_text(json.dumps(report, indent=2))
    print(f"\nsoak: {dict(traffic.outcomes)}; RSS {samples[0][1]:.1f} -> {samples[-1][1]:.1f} MB, "
          f"slope {slope:+.3f} MB/min after warm-up")

    assert not traffic.errors, traffic.errors[:10]
    assert traffic.outcomes["new conversation"] > STREAMS and traffic.outcomes["follow-up"] > 0
    assert slope * window_min <= MAX_GROWTH_MB, f"RSS grows {slope:.3f} MB/min: {report['samples']}"
    # The gauge drops when each stream's task has unwound, just after its client read the last byte.
    metrics = await metrics_once(backend.url, ["assistant_active_streams 0.0"])
    assert "assistant_active_streams 0.0" in metrics, metrics
