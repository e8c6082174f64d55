"""Serve an ASGI app with uvicorn in a daemon thread: servers the tests own, independent of the test loop.

The stand-ins built on it (the scripted model, the Argo CD proxy, the relays) and any test's own app::

    with ThreadedServer(Starlette(routes=...)) as server: httpx.get(server.url + "/x")

Its own thread and event loop: a synchronous test may block on a call to it, and an async test's
loop never has to run it.
"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.types import ASGIApp

from .net import free_port
from .server import Server


class ThreadedServer(Server):
    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, name: str = "test-server") -> None:
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)
        self._name = name

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self._name} did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)
