"""Reading the backend's /metrics once the work being counted has finished.

Counters move when the work they count ends (the HTTP request counter when the response body is
done, the active-streams gauge when the stream's task unwinds), which is a little after the client
has read the last byte. A test therefore waits for the lines it expects, with a deadline that only
bounds a hang: the assertion that follows still decides, on the text it was given.
"""

from __future__ import annotations

import asyncio
import time

import httpx


async def metrics_once(backend_url: str, expected: list[str], timeout_s: float = 15.0) -> str:
    """The /metrics text as soon as it contains every line of ``expected`` (or the last text read
    when the deadline passes, for the caller's assertion to report)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            text = (await client.get(f"{backend_url}/metrics")).text
            if all(line in text for line in expected) or time.monotonic() >= deadline:
                return text
            await asyncio.sleep(0.05)
