"""The test servers keep one shape (tests/support/server.py): ``with Server(...) as s: s.url``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import tests.support
from tests.support.processes import ServerProcess
from tests.support.replay import Canned, ReplayServer
from tests.support.server import Server
from tests.support.threaded import ThreadedServer

UNDERNEATH = {ServerProcess}  # runs a child process for a Server; not one itself


def test_every_support_class_that_stops_is_a_server() -> None:
    stoppable = []
    for info in pkgutil.iter_modules(tests.support.__path__):
        module = importlib.import_module(f"tests.support.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and callable(getattr(cls, "stop", None)) and cls not in UNDERNEATH:
                stoppable.append(cls)
    assert len(stoppable) >= 8, stoppable  # model, proxy, backend, Llama Stack, relays, replay, kubelet, kube
    assert [c.__name__ for c in stoppable if not issubclass(c, Server)] == []
    assert all("url" in dir(c) for c in stoppable)


def test_a_threaded_server_answers_inside_the_block_and_is_gone_after() -> None:
    app = Starlette(routes=[Route("/", lambda _: PlainTextResponse("here"))])
    with ThreadedServer(app) as server:
        assert httpx.get(server.url, timeout=5).text == "here"
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=5)


def test_start_returns_the_server_and_stop_may_repeat() -> None:
    replay = ReplayServer({("GET", "/v1/version"): Canned(b'{"version": "0.7.3"}')})
    assert replay.start() is replay
    try:
        assert httpx.get(f"{replay.url}/v1/version", timeout=5).json() == {"version": "0.7.3"}
    finally:
        replay.stop()
    replay.stop()
