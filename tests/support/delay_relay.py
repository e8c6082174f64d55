"""A TCP relay in front of a real server that delays what clients send, per connection.

``DelayRelay(server_url)``: clients use ``relay.url`` (the same scheme, the relay's port) instead of
``server_url``. TLS passes through untouched (the apiserver's certificate still verifies: it names
127.0.0.1). ``delay_s`` applies to every connection and may change while it runs (the benchmarks
set it per run); ``fast_connections`` exempts the first N connections, so a client's first pooled
connection stays quick while every further one hangs: some API calls answer, others time out.
``connections`` and ``client_chunks`` count what clients sent. ``cut()`` drops every open connection
(a broken link: streams end mid-way); ``refusing`` closes new ones at once (the server unreachable).

The delay is latency, not a throughput limit: every chunk a client sends is delivered ``delay_s``
after it arrived, and chunks are pipelined, so many HTTP/2 requests on one connection are each late
by ``delay_s`` (as over a real link), not by ``delay_s`` times their position, which a relay that
slept before each write would make them. The stage-count test and ``bench/context.py`` rely on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from urllib.parse import urlsplit

from .server import Server


class DelayRelay(Server):
    def __init__(self, target_url: str, *, delay_s: float = 0.0, fast_connections: int = 0) -> None:
        target = urlsplit(target_url)
        assert target.hostname and target.port, f"{target_url}: the relay needs a host and an explicit port"
        self.scheme = target.scheme
        self.target = (target.hostname, target.port)
        self.delay_s = delay_s
        self.fast_connections = fast_connections
        self.connections = 0
        self.refusing = False
        self._handlers: set[asyncio.Task[None]] = set()
        self.client_chunks = 0  # writes from clients: with TLS, a rough count of requests (never 0 for one)
        self._ids = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="delay-relay")

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> DelayRelay:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay relay did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if upstream:
                    self.client_chunks += 1
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # a peer went away, or the relay is stopping
        finally:
            writer.close()

    async def _delayed(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client to server, each chunk written ``delay_s`` after it arrived (pipelined)."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                self.client_chunks += 1
                queue.put_nowait((time.monotonic() + self.delay_s, data))  # read each time: it may change
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # a peer went away, or the relay is stopping
        finally:
            queue.put_nowait(None)
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await delivering
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        index = next(self._ids)
        self.connections += 1
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        delayed = index >= self.fast_connections
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except (OSError, asyncio.CancelledError):
            writer.close()
            return
        # On stop() end quietly: asyncio's stream callback would log a cancelled handler task.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(
                self._delayed(reader, up_writer) if delayed else self._pipe(reader, up_writer, upstream=True),
                self._pipe(up_reader, writer, upstream=False),
            )

    def cut(self) -> None:
        """Drop every open connection (each side sees its stream end)."""

        async def cancel_open() -> None:
            for task in list(self._handlers):
                task.cancel()

        asyncio.run_coroutine_threadsafe(cancel_open(), self._loop).result(10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
