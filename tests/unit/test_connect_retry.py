"""Connecting to Llama Stack is retried once on a connect failure, and a sent request never again.

A real HTTP server on loopback answers; the only seam is the pool's network backend, which fails the
first N TCP connects the way a busy server that does not accept does (httpcore's ConnectError).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpcore2
import httpx
import httpx2
import pytest

from assistant_backend.config import LlamaStackConfig
from assistant_backend.providers.llamastack import build_http_client, build_openai_http_client


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
