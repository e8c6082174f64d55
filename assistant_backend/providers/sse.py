"""Raw server-sent events from Llama Stack, read at the lowest cost per token.

Both of Llama Stack's streaming APIs send one JSON object per ``data:`` line and nothing the relay
needs in ``event:``/``id:`` lines (docs/upstream-facts.md, Llama Stack): Responses sends ``data:``
lines with a ``type``; Agents sends ``data: {"event": {"payload": ...}}`` with no ``event:`` lines
and no ``[DONE]``. So the stream is split into lines straight from the received bytes and only
``data:`` payloads are decoded, with orjson (about 10x faster than ``json`` on these lines).

Batches are the coalescing point: every ``data:`` line completed by one chunk of the byte stream
is handed over together, so a provider can join the tokens already waiting into one event (one SSE
write to the client) instead of paying the whole relay path once per token. A token never waits for
more: whatever has arrived is passed on at once. What one chunk holds is the transport's choice:
Llama Stack's server writes one HTTP/1.1 chunk per event, and httpx/httpx2 hand over one HTTP chunk
per read, so through them a chunk is always one event; the stream transport (:mod:`.transport`,
aiohttp) hands over everything the socket had, so events that queued up while the relay was busy
arrive as one chunk (measured in bench/concurrency.py as token events per answer).

Multi-line ``data:`` fields (allowed by the SSE format, never sent by Llama Stack) are joined with
a newline as the format says; a line longer than :data:`MAX_LINE_BYTES` is a malformed stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

# Llama Stack's biggest line is ``response.completed`` with the whole answer in it; max_tokens bounds
# that far below this, so anything longer is not a stream we understand (and must not grow memory).
MAX_LINE_BYTES = 8 * 1024 * 1024


class MalformedStream(ValueError):
    """The upstream stream cannot be read as SSE with JSON data."""


async def data_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[Any]]:
    """Decoded ``data:`` payloads, grouped by the network read that completed them.

    An event ends at a blank line; its ``data:`` lines are joined. Comments (``: ping``) and other
    fields are skipped, and so is an event the stream ends in the middle of. Undecodable JSON raises :class:`MalformedStream`.
    """
    pending = b""
    data: list[bytes] = []
    async for chunk in chunks:
        if not chunk:
            continue
        buffer = pending + chunk if pending else chunk
        lines = buffer.split(b"\n")
        pending = lines.pop()  # an incomplete last line waits for the next read
        if len(pending) > MAX_LINE_BYTES:
            raise MalformedStream("an SSE line is too long")
        batch: list[Any] = []
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if data:
                    batch.append(_decode(data))
                    data = []
            elif line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
        if batch:
            yield batch
    # An event cut off before its blank line is not dispatched (the SSE format says so): the
    # provider then sees a stream that ended without its terminal event.


def _decode(data: list[bytes]) -> Any:
    try:
        return orjson.loads(data[0] if len(data) == 1 else b"\n".join(data))
    except orjson.JSONDecodeError:
        raise MalformedStream("Llama Stack sent data that is not JSON") from None
