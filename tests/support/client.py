"""Helpers for fault tests: a backend in front of a Llama Stack the test may break, and the backend's
own view of itself (its process, sockets and event-loop tasks) for leak checks."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import httpx
import psutil

from tests.support.backend import SECRET, BackendProcess
from tests.support.sse import Event, iter_events

IDENTITY = {
    "Authorization": SECRET,
    "Argocd-Application-Name": "argocd:guestbook",
    "Argocd-Project-Name": "default",
    "Argocd-Username": "alice",
}
UNLIMITED = {"requests_per_minute": 0, "max_streams_per_user": 0}


@dataclass
class Outcome:
    status: int
    events: list[Event]
    error: dict[str, str] | None  # the JSON error, when the request was refused before the stream
    seconds: float

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def failure_code(self) -> str | None:
        """The error code, whether it came as a JSON answer or as the stream's ``error`` event."""
        if self.error is not None:
            return self.error["code"]
        if self.events and self.events[-1].name == "error":
            return str(self.events[-1].data["code"])
        return None


async def converse(url: str, question: str = "Why is it Degraded?", *, deadline_s: float = 60,
                   headers: dict[str, str] | None = None, **body: object) -> Outcome:
    """One chat turn read to its end, failing (not hanging) if it takes longer than ``deadline_s``."""
    started = time.monotonic()
    events: list[Event] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(deadline_s)) as client:
        async with asyncio.timeout(deadline_s):
            async with client.stream("POST", f"{url}/v1/chat", json={"question": question, **body},
                                     headers=headers or IDENTITY) as response:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    await response.aread()
                    return Outcome(response.status_code, [], response.json()["error"], time.monotonic() - started)
                async for event in iter_events(response):
                    events.append(event)
    return Outcome(response.status_code, events, None, time.monotonic() - started)


class BackendProbe:
    """The backend process seen from outside: psutil on its pid and its /metrics."""

    def __init__(self, backend: BackendProcess) -> None:
        self.backend = backend
        process = backend._process.process
        assert process is not None
        self.process = psutil.Process(process.pid)

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.backend.url}/metrics", timeout=10).text
        match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
        assert match, f"{name} not in /metrics"
        return float(match.group(1))

    def connections(self, status: str | None = None, *, served: bool | None = None) -> int:
        """TCP sockets of the backend; ``served`` True: accepted from clients, False: its own."""
        count = 0
        for conn in self.process.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN or (status is not None and conn.status != status):
                continue
            if served is not None and (conn.laddr.port == self.backend.port) != served:
                continue
            count += 1
        return count

    def snapshot(self) -> dict[str, float]:
        return {
            "tasks": self.metric("assistant_event_loop_tasks"),
            "active_streams": self.metric("assistant_active_streams"),
            "fds": float(self.process.num_fds()),
            "tcp": float(self.connections()),
            # A client left and the backend never closed its side: a leak.
            "served_close_wait": float(self.connections(psutil.CONN_CLOSE_WAIT, served=True)),
            # Pooled keep-alive connections Llama Stack closed while idle: normal, bounded by the pool.
            "upstream_close_wait": float(self.connections(psutil.CONN_CLOSE_WAIT, served=False)),
            "rss_mb": self.process.memory_info().rss / 2**20,
        }
