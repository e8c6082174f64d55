"""The streamed answer's transport: one POST to Llama Stack over aiohttp, its body read as it arrives.

Why not the ``httpx``/``httpx2`` clients the rest of the Llama Stack calls use: a streamed answer is
read chunk by chunk, and that read is most of the relay's cost per token. httpx2 parses HTTP/1.1 in
Python (h11) and opens a cancel scope per read, 80-90 µs per chunk on the replay bench, where
aiohttp's C parser costs about a third of that (README, "Benchmarks"). aiohttp's
``content.iter_any()`` also hands over everything the socket has buffered, where httpx hands over
one HTTP/1.1 chunk per read: Llama Stack writes one chunk per SSE event (docs/upstream-facts.md,
Llama Stack), so only this read lets several waiting events reach :mod:`.sse` as one batch and
leave as one SSE write.

What it keeps from the httpx pools it replaces for the stream:
- a failed *connect* is retried exactly once, a sent request never: aiohttp raises
  ``ClientConnectorError`` (refused, unreachable) and ``ConnectionTimeoutError`` (not accepted
  within ``sock_connect``) only while getting a connection, before a byte of the request is
  written, and it never repeats a POST itself (its one retry on a stale keep-alive connection is
  for idempotent methods only);
- the same base URL, ``Authorization`` header and timeouts as the client's JSON calls (:meth:`like`):
  ``connect`` bounds each TCP connect, ``read`` each wait for the next bytes, ``pool`` getting a
  connection (waiting for a free one included);
- closing promptly: :meth:`UpstreamStream.aclose` on an unfinished body closes the connection, so
  Llama Stack sees the disconnect and stops the model call; a finished one goes back to the pool.

Errors stay aiohttp's; :func:`.llamastack.api_error_from` maps them to the same client codes as the
httpx ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import httpx

# One more TCP connect attempt after a failed one, as the httpx pools do (llamastack.CONNECT_RETRIES).
CONNECT_RETRIES = 1
# Open streams at once (one connection each): above the 1,000 concurrent streams one worker serves.
MAX_CONNECTIONS = 2000
# An idle connection is kept for less than uvicorn's 5 s keep-alive (Llama Stack's server), so the
# pool does not hand out one the server is closing (a POST on it would fail, and is never retried).
KEEPALIVE_S = 4.0
# An error answer's body is read for the log only, and only this much of it.
_ERROR_BODY_BYTES = 4096

_CONNECT_FAILURES: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
_NOT_RETRIED: tuple[type[BaseException], ...] = (aiohttp.ClientSSLError,)  # a certificate stays wrong


@dataclass(frozen=True, slots=True)
class StreamTimeouts:
    connect_s: float | None
    read_s: float | None
    pool_s: float | None

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None, connect=self.pool_s, sock_connect=self.connect_s, sock_read=self.read_s
        )


class UpstreamStream:
    """One streamed answer: its status, its body as it arrives, and the close."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status

    def chunks(self) -> AsyncIterator[bytes]:
        """Whatever has arrived at each read (several SSE events when they came together)."""
        return self._response.content.iter_any()

    async def error_text(self) -> str:
        """The start of an error answer's body (for the log)."""
        try:
            return (await self._response.content.read(_ERROR_BODY_BYTES)).decode(errors="replace")
        except aiohttp.ClientError:
            return ""

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # read to the end: the connection can serve the next turn
        else:
            self._response.close()  # mid-answer: hang up, so Llama Stack stops the model call


ConnectorFactory = Callable[[], aiohttp.BaseConnector]


class StreamClient:
    """The process's pool for streamed answers (a session is made on first use, inside the loop)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeouts: StreamTimeouts,
        *,
        connector: ConnectorFactory | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {**headers, "Accept": "text/event-stream", "Content-Type": "application/json"}
        self._timeout = timeouts.client_timeout()
        self._connector = connector or _default_connector
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def like(cls, http: httpx.AsyncClient, *, connector: ConnectorFactory | None = None) -> StreamClient:
        """A stream pool to the server ``http`` talks to, with its auth header and timeouts."""
        headers = {"Authorization": http.headers["Authorization"]} if "Authorization" in http.headers else {}
        timeout = http.timeout
        return cls(
            str(http.base_url),
            headers,
            StreamTimeouts(connect_s=timeout.connect, read_s=timeout.read, pool_s=timeout.pool),
            connector=connector,
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=self._connector(),
                timeout=self._timeout,
                # Nothing from the environment: no proxy variables, no .netrc credentials.
                trust_env=False,
            )
        return self._session

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> UpstreamStream:
        """Send one request whose answer is read as a stream; a failed connect is tried once more."""
        session = self._client()
        merged = {**self._headers, **headers} if headers else self._headers
        url = self._base_url + path
        attempt = 0
        while True:
            try:
                response = await session.post(url, data=body, headers=merged)
            except _NOT_RETRIED:
                raise
            except _CONNECT_FAILURES:
                attempt += 1
                if attempt > CONNECT_RETRIES:
                    raise
                continue
            return UpstreamStream(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _default_connector() -> aiohttp.BaseConnector:
    return aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_S)
