"""Connecting to Llama Stack is retried once on a connect failure, and a sent request never again.

A real HTTP server on loopback answers; the only seam is the pool's network backend (httpx, httpx2)
or the stream pool's connector (aiohttp), which fails the first N TCP connects the way a busy server
that does not accept does (httpcore's ConnectError; aiohttp's refused connect or connect timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpcore
import httpcore2
import httpx
import httpx2
import pytest

from assistant_backend.config import LlamaStackConfig
from assistant_backend.errors import ErrorCode
from assistant_backend.providers.llamastack import api_error_from, build_http_client, build_openai_http_client
from assistant_backend.providers.transport import StreamClient, StreamTimeouts


class LoopbackServer:
    """Counts the requests it read; answers 200 ``ok``, or hangs up after reading when ``drop``."""

    def __init__(self, *, drop: bool = False) -> None:
        self.drop = drop
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.requests += 1
        if not self.drop:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> LoopbackServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class FlakyConnects:
    """Wraps a pool's network backend; the first ``failures`` connects raise ``error``."""

    def __init__(self, inner: Any, failures: int, error: type[Exception]) -> None:
        self.inner, self.failures, self.error, self.attempts = inner, failures, error, 0

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error("connection not accepted")
        return await self.inner.connect_tcp(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    async with LoopbackServer() as s:
        yield s


def _httpx_client(port: int, failures: int) -> tuple[httpx.AsyncClient, FlakyConnects]:
    client = build_http_client(LlamaStackConfig(url=f"http://127.0.0.1:{port}"))
    pool = client._transport._pool  # type: ignore[attr-defined]
    flaky = FlakyConnects(pool._network_backend, failures, httpcore.ConnectError)
    pool._network_backend = flaky
    return client, flaky


def _httpx2_client(failures: int) -> tuple[httpx2.AsyncClient, FlakyConnects]:
    client = build_openai_http_client()
    pool = client._transport._pool  # type: ignore[attr-defined]
    flaky = FlakyConnects(pool._network_backend, failures, httpcore2.ConnectError)
    pool._network_backend = flaky
    return client, flaky


async def test_httpx_pool_retries_one_failed_connect(server: LoopbackServer) -> None:
    client, flaky = _httpx_client(server.port, failures=1)
    async with client:
        response = await client.get("/v1/version")
    assert response.text == "ok" and flaky.attempts == 2 and server.requests == 1


async def test_httpx_pool_gives_up_after_the_second_failed_connect(server: LoopbackServer) -> None:
    client, flaky = _httpx_client(server.port, failures=2)
    async with client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/v1/version")
    assert flaky.attempts == 2 and server.requests == 0


async def test_httpx_pool_never_resends_a_request_the_server_read() -> None:
    async with LoopbackServer(drop=True) as dropping:
        client, flaky = _httpx_client(dropping.port, failures=0)
        async with client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post("/v1/responses", json={"stream": True})
    assert flaky.attempts == 1 and dropping.requests == 1


async def test_openai_pool_retries_one_failed_connect(server: LoopbackServer) -> None:
    client, flaky = _httpx2_client(failures=1)
    async with client:
        response = await client.get(f"http://127.0.0.1:{server.port}/v1/models")
    assert response.text == "ok" and flaky.attempts == 2 and server.requests == 1


async def test_openai_pool_gives_up_after_the_second_failed_connect(server: LoopbackServer) -> None:
    client, flaky = _httpx2_client(failures=2)
    async with client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"http://127.0.0.1:{server.port}/v1/models")
    assert flaky.attempts == 2 and server.requests == 0


async def test_openai_pool_never_resends_a_request_the_server_read() -> None:
    async with LoopbackServer(drop=True) as dropping:
        client, flaky = _httpx2_client(failures=0)
        async with client:
            with pytest.raises(httpx2.RemoteProtocolError):
                await client.post(f"http://127.0.0.1:{dropping.port}/v1/responses", json={"stream": True})
    assert flaky.attempts == 1 and dropping.requests == 1


# ---- the stream pool (aiohttp) ------------------------------------------------------------------
class FlakyConnector(aiohttp.TCPConnector):
    """A real TCP connector whose first ``failures`` connects fail before reaching the socket: with
    ``refused``, as aiohttp reports a refused connect; else as a connect that timed out."""

    def __init__(self, failures: int, *, refused: bool = True) -> None:
        super().__init__()
        self.failures, self.refused, self.attempts = failures, refused, 0

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        self.attempts += 1
        if self.attempts <= self.failures:
            if self.refused:
                raise aiohttp.ClientConnectorError(req.connection_key, ConnectionRefusedError(111, "refused"))
            raise TimeoutError  # aiohttp's connect timeout, which the session reports as ConnectionTimeoutError
        return await super()._create_connection(req, traces, timeout)


def _streams(port: int, connector: FlakyConnector) -> StreamClient:
    return StreamClient(f"http://127.0.0.1:{port}", {}, StreamTimeouts(connect_s=2, read_s=5, pool_s=5),
                        connector=lambda: connector)


@pytest.mark.parametrize("refused", [True, False], ids=["refused", "connect-timeout"])
async def test_stream_pool_retries_one_failed_connect(server: LoopbackServer, refused: bool) -> None:
    connector = FlakyConnector(1, refused=refused)
    streams = _streams(server.port, connector)
    try:
        stream = await streams.post("/v1/responses", b"{}")
        body = b"".join([chunk async for chunk in stream.chunks()])
        await stream.aclose()
    finally:
        await streams.aclose()
    assert body == b"ok" and connector.attempts == 2 and server.requests == 1


@pytest.mark.parametrize("refused", [True, False], ids=["refused", "connect-timeout"])
async def test_stream_pool_gives_up_after_the_second_failed_connect(server: LoopbackServer, refused: bool) -> None:
    connector = FlakyConnector(2, refused=refused)
    streams = _streams(server.port, connector)
    try:
        with pytest.raises(aiohttp.ClientConnectorError if refused else aiohttp.ConnectionTimeoutError) as failed:
            await streams.post("/v1/responses", b"{}")
    finally:
        await streams.aclose()
    assert connector.attempts == 2 and server.requests == 0
    expected = ErrorCode.LLAMA_STACK_UNAVAILABLE if refused else ErrorCode.LLAMA_STACK_TIMEOUT
    assert api_error_from(failed.value).code is expected


async def test_stream_pool_retries_a_really_refused_connect_once() -> None:
    async with LoopbackServer() as gone:
        port = gone.port  # a port nothing listens on once this server is closed
    connector = FlakyConnector(0)
    streams = _streams(port, connector)
    try:
        with pytest.raises(aiohttp.ClientConnectorError) as failed:
            await streams.post("/v1/responses", b"{}")
    finally:
        await streams.aclose()
    assert connector.attempts == 2
    assert api_error_from(failed.value).code is ErrorCode.LLAMA_STACK_UNAVAILABLE


async def test_stream_pool_never_resends_a_request_the_server_read() -> None:
    async with LoopbackServer(drop=True) as dropping:
        connector = FlakyConnector(0)
        streams = _streams(dropping.port, connector)
        try:
            with pytest.raises(aiohttp.ServerDisconnectedError) as failed:
                await streams.post("/v1/responses", b'{"stream": true}')
        finally:
            await streams.aclose()
    assert connector.attempts == 1 and dropping.requests == 1
    error = api_error_from(failed.value)
    assert (error.code, error.message) == (ErrorCode.LLAMA_STACK_UNAVAILABLE, "the connection to Llama Stack was lost")
