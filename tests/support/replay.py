"""A loopback HTTP server that replays captured responses byte for byte (for parser tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .model_server import _free_port


@dataclass(frozen=True)
class Canned:
    body: bytes
    status: int = 200
    content_type: str = "application/json"


class ReplayServer:
    def __init__(self, routes: dict[tuple[str, str], Canned]) -> None:
        self.routes = routes
        self.port = _free_port()
        self.requests: list[tuple[str, str, bytes]] = []
        self._server: uvicorn.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append((request.method, request.url.path, body))
        canned = self.routes.get((request.method, request.url.path))
        if canned is None:
            return Response(b'{"detail":"Not Found"}', 404, media_type="application/json")
        return Response(canned.body, canned.status, media_type=canned.content_type)

    def __enter__(self) -> ReplayServer:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "DELETE"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="off"))
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
