"""A loopback relay in front of a real Llama Stack that keeps the body of every POST it forwards:
what the backend sent, for tests and the tokens benchmark to measure. Streams pass through as they
arrive (raw bytes, no buffering)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from assistant_backend.context.tokens import estimate_tokens

from .server import Server
from .threaded import ThreadedServer

_HOP = ("content-length", "transfer-encoding", "connection")


class RecordingRelay(Server):
    def __init__(self, target: str) -> None:
        self.target = target
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self._client: httpx.AsyncClient | None = None  # made on the relay's own loop
        app = Starlette(routes=[Route("/{path:path}", self._relay, methods=["GET", "POST", "DELETE"])])
        self._server = ThreadedServer(app, name="recording-relay")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> RecordingRelay:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    async def _relay(self, request: Request) -> Response:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=None)
        body = await request.body()
        if request.method == "POST" and body:
            self.posts.append((request.url.path, json.loads(body)))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        upstream = await self._client.send(
            self._client.build_request(request.method, self.target + request.url.path,
                                       params=request.url.query, headers=headers, content=body),
            stream=True)

        async def relay() -> AsyncIterator[bytes]:
            async for chunk in upstream.aiter_raw():
                yield chunk

        return StreamingResponse(relay(), status_code=upstream.status_code,
                                 headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP},
                                 background=BackgroundTask(upstream.aclose))


def sent_texts(posts: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The text the backend sent: instructions and messages, however each API names them."""
    texts: list[str] = []
    for _, body in posts:
        if isinstance(body.get("instructions"), str):
            texts.append(body["instructions"])
        config = body.get("agent_config") or {}
        if isinstance(config.get("instructions"), str):
            texts.append(config["instructions"])
        for message in [*(body.get("input") or []), *(body.get("messages") or [])]:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return texts


def sent_tokens(posts: list[tuple[str, dict[str, Any]]]) -> int:
    """Tokens of text the backend sent, with the backend's own estimator."""
    return sum(estimate_tokens(text) for text in sent_texts(posts))
