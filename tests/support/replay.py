"""A loopback HTTP server that replays captured responses byte for byte (for parser tests)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .server import Server
from .threaded import ThreadedServer


@dataclass(frozen=True)
class Canned:
    body: bytes
    status: int = 200
    content_type: str = "application/json"


class ReplayServer(Server):
    def __init__(self, routes: dict[tuple[str, str], Canned]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, bytes]] = []
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "DELETE"])])
        self._server = ThreadedServer(app, name="replay")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> ReplayServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append((request.method, request.url.path, body))
        canned = self.routes.get((request.method, request.url.path))
        if canned is None:
            return Response(b'{"detail":"Not Found"}', 404, media_type="application/json")
        return Response(canned.body, canned.status, media_type=canned.content_type)
