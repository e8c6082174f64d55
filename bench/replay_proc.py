"""A replay Llama Stack in a process of its own: the exact bytes a real server sent, at a fixed token rate.

``bench/concurrency.py`` captures one Responses stream from a real Llama Stack 0.7.3 and one Agents
turn from a real 0.3.5, each with that server's ``/v1/version`` and ``/v1/models`` answers, and
starts this server with one of them. Every POST then gets the captured stream again, byte for byte: the events before
the first text delta at once, each text-delta event ``--token-delay`` after the previous one (on a
fixed schedule, so the rate does not drift under load), the rest after the last delta. Without a
model or a Llama Stack behind it the replay costs almost nothing per token, so a benchmark through
it measures the backend, not Llama Stack saturating the 2 cores.

It is a bare asyncio HTTP/1.1 server (uvloop when installed), not a framework: at 1,000 streams a
framework's per-chunk cost would be the noise this mode exists to remove. It speaks just what the
backend and the benchmark's client send: keep-alive requests with ``Content-Length`` bodies; it
answers JSON with ``Content-Length`` and streams with ``Transfer-Encoding: chunked``, like uvicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Capture:
    version: bytes
    models: bytes
    events: list[bytes]  # the stream split into events (each with its blank line)


def split_events(raw: bytes) -> list[bytes]:
    return [block + b"\n\n" for block in raw.split(b"\n\n") if block.strip()]


def is_token(event: bytes) -> bool:
    """A text delta of either API (the events paced at the token rate)."""
    return b'"response.output_text.delta"' in event or (
        b'"step_progress"' in event and b'"type":"text"' in event.replace(b": ", b":")
    )


def load(directory: Path) -> Capture:
    return Capture(
        version=(directory / "version.json").read_bytes(),
        models=(directory / "models.json").read_bytes(),
        events=split_events((directory / "stream.sse").read_bytes()),
    )


def lengthen(events: list[bytes], tokens: int) -> list[bytes]:
    """The stream with its text deltas repeated in order until there are ``tokens`` of them (a longer
    answer of the same bytes, so one run can tell a turn's fixed cost from the cost per token)."""
    deltas = [e for e in events if is_token(e)]
    if not deltas or tokens <= len(deltas):
        return events
    last = max(i for i, e in enumerate(events) if is_token(e))
    extra = [deltas[i % len(deltas)] for i in range(tokens - len(deltas))]
    return [*events[: last + 1], *extra, *events[last + 1:]]


class Replay(asyncio.Protocol):
    def __init__(self, capture: Capture, token_delay: float) -> None:
        self.capture = capture
        self.token_delay = token_delay
        self.buffer = b""
        self.transport: Any = None  # an asyncio or uvloop transport
        self.busy = False  # one request at a time per connection (no pipelining)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length:]
        method, path = head[0].split(" ")[:2]
        path = path.split("?")[0]
        self.busy = True
        asyncio.get_running_loop().create_task(self._answer(method, path))

    def _json(self, body: bytes, status: str = "200 OK") -> None:
        if self.transport is not None:
            self.transport.write(f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: "
                                 f"{len(body)}\r\n\r\n".encode() + body)

    async def _answer(self, method: str, path: str) -> None:
        try:
            if method == "GET" and path == "/v1/version":
                self._json(self.capture.version)
            elif method == "GET" and path == "/v1/models":
                self._json(self.capture.models)
            elif method == "GET" and path == "/v1/health":
                self._json(b'{"status":"OK"}')
            elif method == "POST" and (path.endswith("/responses") or path.endswith("/turn")):
                await self._stream(self.capture.events)
            elif method == "POST" and path.endswith("/session"):
                self._json(b'{"session_id":"s-replay"}')
            elif method == "POST" and path.endswith("/agents"):
                self._json(b'{"agent_id":"a-replay"}')
            elif method == "DELETE":
                self._json(b"", "204 No Content")
            else:
                self._json(b'{"detail":"Not Found"}', "404 Not Found")
        finally:
            self.busy = False
            if self.buffer and self.transport is not None:
                self._next()

    async def _stream(self, events: list[bytes]) -> None:
        if self.transport is None:
            return
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                             b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
        started, tokens, pending = time.monotonic(), 0, b""
        for event in events:
            if is_token(event):
                if pending:
                    self._chunk(pending)
                    pending = b""
                tokens += 1
                wait = started + tokens * self.token_delay - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.transport is None:
                    return  # the client went away
                self._chunk(event)
            else:
                pending += event
        if pending:
            self._chunk(pending)
        if self.transport is not None:
            self.transport.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--captures", type=Path, required=True)
    parser.add_argument("--token-delay", type=float, default=0.25)
    parser.add_argument("--tokens", type=int, default=0, help="text deltas per answer (default: as captured)")
    args = parser.parse_args()
    capture = load(args.captures)
    if args.tokens:
        capture = Capture(capture.version, capture.models, lengthen(capture.events, args.tokens))
    json.loads(capture.version)  # fail at start, not per request, on a broken capture
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Replay(capture, args.token_delay), "127.0.0.1", args.port,
                                          backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
