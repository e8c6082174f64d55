"""The streamed answers' transport (providers/transport.py) against a real HTTP/1.1 server on loopback:
events that arrive together are read together, a stream closed mid-answer hangs up at once, a
finished one keeps its connection, the JSON client's auth and timeouts carry over, and a stalled
stream times out with the timeout code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from assistant_backend.config import LlamaStackConfig
from assistant_backend.errors import ErrorCode
from assistant_backend.providers.llamastack import api_error_from, build_http_client
from assistant_backend.providers.sse import data_batches
from assistant_backend.providers.transport import StreamClient, StreamTimeouts

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(text: str) -> bytes:
    return b'data: {"type":"response.output_text.delta","delta":"%s"}\n\n' % text.encode()


class Server:
    """Reads each request's head and body; what it answers is the test's ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.heads: list[bytes] = []
        self.connections = 0
        self.hung_up = asyncio.Event()  # a client closed a connection
        self.port = 0

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
        if not head:
            return False
        self.heads.append(head)
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self.read_request(reader):
                await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.hung_up.set()
        writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()


@pytest.fixture
async def streams() -> AsyncIterator[Callable[[int], StreamClient]]:
    made: list[StreamClient] = []

    def make(port: int, read_s: float = 5) -> StreamClient:
        client = StreamClient(f"http://127.0.0.1:{port}", {}, StreamTimeouts(connect_s=2, read_s=read_s, pool_s=5))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def test_events_written_together_are_one_batch(streams: Callable[..., StreamClient]) -> None:
    """Llama Stack writes one HTTP chunk per event; three of them in one network write (a backlog)
    reach the SSE reader as one batch, then a later event as the next."""
    later = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(event("a")) + chunk(event("b")) + chunk(event("c")))
        await writer.drain()
        await later.wait()
        writer.write(chunk(event("d")) + b"0\r\n\r\n")
        await writer.drain()

    async with Server(answer) as server:
        stream = await streams(server.port).post("/v1/responses", b"{}")
        batches = data_batches(stream.chunks())
        first = await anext(batches)
        later.set()
        rest = [batch async for batch in batches]
        await stream.aclose()
    assert [e["delta"] for e in first] == ["a", "b", "c"]
    assert [[e["delta"] for e in batch] for batch in rest] == [["d"]]


async def test_closing_mid_answer_hangs_up_and_a_finished_answer_keeps_the_connection(
    streams: Callable[..., StreamClient],
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(event("x")))
        if b"endless" in server.heads[-1]:
            await writer.drain()
            await reader.read()  # the answer never ends: only the client's hang-up (EOF) ends this
            return
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with Server(answer) as server:
        client = streams(server.port)
        for _ in range(2):  # two finished answers, one after the other: one connection
            stream = await client.post("/v1/responses", b"{}")
            assert [c async for c in stream.chunks()]
            await stream.aclose()
        assert server.connections == 1 and not server.hung_up.is_set()

        stream = await client.post("/v1/responses?endless", b"{}")
        assert await anext(aiter(stream.chunks()))
        await stream.aclose()
        await asyncio.wait_for(server.hung_up.wait(), 10)  # a bound on a hang, not a timing assert
    assert server.connections == 1  # the kept connection served the third request, then was hung up


async def test_the_json_clients_server_auth_and_timeouts_carry_over(streams: Callable[..., StreamClient]) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + b"0\r\n\r\n")
        await writer.drain()

    async with Server(answer) as server:
        config = LlamaStackConfig(url=f"http://127.0.0.1:{server.port}", api_key="sk-test", timeout_s=42,
                                  connect_timeout_s=3)
        async with build_http_client(config) as http:
            client = StreamClient.like(http)
            try:
                stream = await client.post("/v1/responses", b'{"q": 1}')
                await stream.aclose()
            finally:
                await client.aclose()
    head = server.heads[-1].lower()
    assert head.startswith(b"post /v1/responses http/1.1")
    assert b"authorization: bearer sk-test" in head and b"content-type: application/json" in head
    timeout = client._timeout
    assert (timeout.sock_read, timeout.sock_connect, timeout.connect, timeout.total) == (42, 3, 42, None)


async def test_no_api_key_sends_no_authorization(streams: Callable[..., StreamClient]) -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:1") as http:
        client = StreamClient.like(http)
    assert "Authorization" not in client._headers


async def test_a_stalled_stream_times_out_with_the_timeout_code(streams: Callable[..., StreamClient]) -> None:
    stalled = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + chunk(event("x")))
        await writer.drain()
        await stalled.wait()  # never set

    async with Server(answer) as server:
        stream = await streams(server.port, read_s=0.3).post("/v1/responses", b"{}")
        with pytest.raises(Exception) as failed:  # which type it is, is what the mapping decides
            async for _ in stream.chunks():
                pass
        await stream.aclose()
    error = api_error_from(failed.value)
    assert (error.code, error.message) == (ErrorCode.LLAMA_STACK_TIMEOUT, "Llama Stack did not answer in time")
