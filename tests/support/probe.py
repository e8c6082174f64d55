"""A running backend seen from outside, for leak checks: psutil on its process, and its /metrics."""

from __future__ import annotations

import re

import httpx
import psutil

from .backend import BackendProcess


class BackendProbe:
    """The backend process seen from outside: psutil on its pid and its /metrics."""

    def __init__(self, backend: BackendProcess) -> None:
        self.backend = backend
        self.process = psutil.Process(backend.pid)

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
