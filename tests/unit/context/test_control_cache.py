"""The control-plane cache's store and informer (context/control_cache.py) on recorded watch lines.

``tests/unit/data/watch_applications.jsonl`` was recorded from a real kube-apiserver (the one
tests/support/kube.py runs): a watch of Applications from a list's resourceVersion while one was
created, had its status written, moved to another project and deleted, then a BOOKMARK; its last
line is what the same server streams for a watch from a version it no longer keeps (HTTP 200, an
ERROR event carrying a 410 Status). ``list_applications.json`` is a list with that Application.
The informer runs against a replay of those bytes behind the same two calls it makes of a
KubeClient (the WatchClient seam), cut into uneven chunks as a real stream arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from assistant_backend.context import control_cache
from assistant_backend.context.control_cache import (
    Budget,
    ControlCache,
    Informer,
    OverCap,
    Store,
    WatchError,
    _lines,
    decode_event,
    decode_page,
)
from assistant_backend.context.kube import Forbidden, Gone, Unreachable

DATA = Path(__file__).parent.parent / "data"
LINES = (DATA / "watch_applications.jsonl").read_bytes().splitlines()
LIST = (DATA / "list_applications.json").read_bytes()
API, KIND = "argoproj.io/v1alpha1", "Application"


def test_recorded_events_decode_compacted_with_their_versions() -> None:
    added, status, moved, deleted, bookmark = (decode_event(line, API, KIND) for line in LINES[:5])
    assert [e.type for e in (added, status, moved, deleted, bookmark)] == [
        "ADDED",
        "MODIFIED",
        "MODIFIED",
        "DELETED",
        "BOOKMARK",
    ]
    assert added.key == ("shop", "web") and deleted.key == ("shop", "web")
    raw = orjson.loads(LINES[0])["object"]
    assert raw["metadata"]["managedFields"], "the recorded object has managedFields"
    kept = orjson.loads(added.data)
    assert "managedFields" not in kept["metadata"]
    assert kept == {**raw, "metadata": {k: v for k, v in raw["metadata"].items() if k != "managedFields"}}
    assert orjson.loads(moved.data)["spec"]["project"] == "other"
    assert bookmark.resource_version == "194" and bookmark.data == b"" and deleted.data == b""
    versions = [int(e.resource_version) for e in (added, status, moved, deleted, bookmark)]
    assert versions == sorted(versions)


def test_an_error_event_410_means_relist_and_any_other_error_or_junk_is_a_failure() -> None:
    with pytest.raises(Gone):
        decode_event(LINES[5], API, KIND)
    other = (
        b'{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","code":500,"reason":"InternalError"}}'
    )
    with pytest.raises(WatchError, match="500"):
        decode_event(other, API, KIND)
    for junk in (b"not json", b"[]", b'{"type":"ADDED"}', b'{"type":"SURPRISE","object":{}}'):
        with pytest.raises(WatchError):
            decode_event(junk, API, KIND)


def test_a_list_page_decodes_like_a_get_with_its_version() -> None:
    items, rv, token = decode_page(LIST, API, KIND)
    assert rv == "192" and token == ""
    [(key, data)] = items
    obj = orjson.loads(data)
    assert key == ("shop", "web") and obj["kind"] == KIND and obj["apiVersion"] == API
    assert "managedFields" not in obj["metadata"]
    # A built-in kind's list items carry no apiVersion/kind; a GET's answer does: filled in.
    cm_list = b'{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"argocd-cm","namespace":"argocd"},"data":{"a":"b"}}]}'
    [(_, cm)] = decode_page(cm_list, "v1", "ConfigMap")[0]
    assert orjson.loads(cm) == {
        "metadata": {"name": "argocd-cm", "namespace": "argocd"},
        "data": {"a": "b"},
        "apiVersion": "v1",
        "kind": "ConfigMap",
    }


def test_stores_count_their_bytes_against_one_cap() -> None:
    budget = Budget(100)
    apps, projects = Store(budget), Store(budget)
    apps.put(("a", "x"), b"x" * 40)
    projects.put(("argocd", "p"), b"p" * 40)
    assert budget.used == 80 == apps.size + projects.size
    with pytest.raises(OverCap):
        apps.put(("a", "y"), b"y" * 30)
    assert budget.used == 80 and apps.get(("a", "y")) is None, "a refused put changes nothing"
    apps.put(("a", "x"), b"x" * 10)  # a smaller version of the same object frees the difference
    assert budget.used == 50
    apps.put(("a", "y"), b"y" * 30)
    apps.delete(("a", "x"))
    apps.delete(("a", "gone"))
    assert budget.used == 70
    apps.replace([(("b", "z"), b"z" * 5)])
    assert budget.used == 45 and len(apps) == 1
    projects.clear()
    apps.clear()
    assert budget.used == 0


async def test_lines_are_split_across_chunks() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b'{"a":', b'1}\n{"b"', b":2}\n\n", b'{"c":3}'):
            yield chunk

    assert [line async for line in _lines(chunks())] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


class Replay:
    """The informer's two calls of a KubeClient, answered from recorded bytes: each list from
    ``lists``, each watch from ``watches`` (lines, or an exception the call raises); when both
    run out, a watch stays open and quiet (``parked`` is set) until cancelled."""

    def __init__(self, lists: list[bytes | Exception], watches: list[list[bytes] | Exception]) -> None:
        self.lists = lists
        self.watches = watches
        self.list_params: list[dict[str, str]] = []
        self.watch_params: list[dict[str, str]] = []
        self.parked = asyncio.Event()

    async def get_bytes(self, path: str, params: Mapping[str, str] | None = None) -> bytes | None:
        self.list_params.append(dict(params or {}))
        if not self.lists:
            self.parked.set()
            await asyncio.Event().wait()
        item = self.lists.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    @asynccontextmanager
    async def watch_stream(
        self, path: str, params: Mapping[str, str], *, read_timeout_s: float
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        self.watch_params.append(dict(params))
        assert read_timeout_s > int(params["timeoutSeconds"]), (
            "silence past the server's timeout is a failure"
        )
        if not self.watches:
            self.parked.set()
            yield _quiet()
            return
        item = self.watches.pop(0)
        if isinstance(item, Exception):
            raise item
        yield _uneven(b"".join(line + b"\n" for line in item))

    async def aclose(self) -> None:
        pass


async def _quiet() -> AsyncIterator[bytes]:
    await asyncio.Event().wait()
    yield b""


async def _uneven(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 97):
        yield body[start : start + 97]


def informer(client: Replay, cap: int = 1 << 20) -> Informer:
    return Informer(
        client, "/apis/argoproj.io/v1alpha1/applications", API, KIND, Budget(cap), call_timeout_s=3
    )


async def run_until_parked(inf: Informer, client: Replay) -> asyncio.Task[None]:
    task = asyncio.create_task(inf.run())
    async with asyncio.timeout(10):
        await client.parked.wait()
    return task


async def until_state(inf: Informer, state: str) -> None:
    """Poll the informer's state (a few ms apart, bounded): the tests wait for a decision, never a time."""
    async with asyncio.timeout(10):
        while inf.state != state:
            await asyncio.sleep(0.001)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_list_watch_rewatch_from_the_bookmark_and_relist_on_410() -> None:
    empty = b'{"apiVersion":"argoproj.io/v1alpha1","items":[],"kind":"ApplicationList","metadata":{"resourceVersion":"190"}}'
    client = Replay(lists=[empty, LIST], watches=[LINES[:2], LINES[2:5], [LINES[5]]])
    inf = informer(client)
    task = await run_until_parked(inf, client)
    try:
        # list (190) -> watch from 190: created, status -> the stream ends (server timeout) ->
        # re-watch from the last version: moved, deleted, bookmark 194 -> re-watch from 194: 410 ->
        # relist (LIST, 192) -> watch from 192, open and quiet: serving.
        assert [p["resourceVersion"] for p in client.watch_params] == [
            "190",
            orjson.loads(LINES[1])["object"]["metadata"]["resourceVersion"],
            "194",
            "192",
        ]
        assert all(p["watch"] == "1" and p["allowWatchBookmarks"] == "true" for p in client.watch_params)
        assert [p["limit"] for p in client.list_params] == ["500", "500"]
        assert inf.serving and inf.state == "watching"
        held = inf.get("shop", "web")
        assert held is not None and orjson.loads(held)["spec"]["project"] == "default"
    finally:
        await stop(task)
    assert inf.state == "stopped" and inf.get("shop", "web") is None and len(inf.store) == 0


async def test_a_watch_that_breaks_serves_nothing_until_listed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Replay(
        lists=[LIST, Unreachable("cannot connect (ConnectError)"), LIST],
        watches=[
            Unreachable("watch timed out"),
        ],
    )
    inf = informer(client)
    states: list[str] = []
    original = inf._set

    def record(state: control_cache.State) -> None:
        states.append(state)
        original(state)

    inf._set = record  # type: ignore[method-assign]
    monkeypatch.setattr(control_cache, "BACKOFF_S", (0.001, 0.002))
    task = await run_until_parked(inf, client)
    try:
        assert states == [
            "listing",
            "synced",
            "backoff",
            "listing",
            "backoff",
            "listing",
            "synced",
            "watching",
        ]
        assert inf.failures == 2 and inf.serving
    finally:
        await stop(task)


async def test_forbidden_and_over_the_cap_serve_nothing() -> None:
    client = Replay(lists=[Forbidden("forbidden by RBAC", 403)], watches=[])
    inf = informer(client)
    task = asyncio.create_task(inf.run())
    try:
        await until_state(inf, "forbidden")
        assert not inf.serving and inf.get("shop", "web") is None
    finally:
        await stop(task)

    client = Replay(lists=[LIST], watches=[])
    inf = informer(client, cap=100)
    task = asyncio.create_task(inf.run())
    try:
        await until_state(inf, "over_cap")
        assert len(inf.store) == 0 and inf._budget.used == 0
        assert client.watch_params == [], "no watch of what did not fit"
    finally:
        await stop(task)


async def test_a_large_event_is_parsed_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    raw: dict[str, Any] = orjson.loads(LINES[0])
    raw["object"].setdefault("status", {})["resources"] = [
        {"kind": "ConfigMap", "name": f"cm-{i}", "namespace": "shop", "status": "Synced", "version": "v1"}
        for i in range(5000)
    ]
    big = orjson.dumps(raw)
    assert len(big) > control_cache.OFF_LOOP_BYTES
    threads: list[Any] = []
    original = asyncio.to_thread

    async def to_thread(func: Any, /, *args: Any) -> Any:
        threads.append(func)
        return await original(func, *args)

    monkeypatch.setattr(control_cache.asyncio, "to_thread", to_thread)
    empty = b'{"items":[],"metadata":{"resourceVersion":"1"}}'
    client = Replay(lists=[empty], watches=[[big]])
    inf = informer(client, cap=10 << 20)
    task = await run_until_parked(inf, client)
    try:
        assert len(threads) == 1, "the one large line, not the small list"
        held = inf.get("shop", "web")
        assert held is not None and len(orjson.loads(held)["status"]["resources"]) == 5000
        cache = ControlCache(client, "argocd", call_timeout_s=3)
        cache.applications = inf
        app = await cache.application("shop", "web")
        assert app is not None and len(threads) == 2, "and parsed off the loop on read"
    finally:
        await stop(task)


async def test_an_unexpected_failure_serves_nothing_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug or a surprise in the stream must not leave a dead informer that still says it serves."""
    client = Replay(lists=[LIST, LIST], watches=[[b'{"type":"ADDED","object":{"metadata":"not an object"}}']])
    monkeypatch.setattr(control_cache, "BACKOFF_S", (0.001, 0.002))
    inf = informer(client)
    failed: list[str] = []
    original = inf._fail
    inf._fail = lambda state, reason: (failed.append(reason), original(state, reason))[1]  # type: ignore[method-assign,func-returns-value]
    task = await run_until_parked(inf, client)
    try:
        assert failed and inf.failures == 1, failed
        assert inf.serving and len(client.list_params) == 2, "listed again and watching"
    finally:
        await stop(task)


async def test_410_again_and_again_backs_off(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    original = asyncio.sleep

    async def sleep(delay: float, *args: Any) -> None:
        sleeps.append(delay)
        await original(0)

    monkeypatch.setattr(control_cache.asyncio, "sleep", sleep)
    gone = [LINES[5]]
    client = Replay(lists=[LIST] * 5, watches=[gone] * 5)
    inf = informer(client)
    task = await run_until_parked(inf, client)
    await stop(task)
    assert len(client.list_params) >= 5
    # Two relists at once, then backing off 0.5, 1, 2 s, each jittered down to half.
    assert len(sleeps) >= 3
    for delay, ceiling in zip(sleeps[:3], (0.5, 1.0, 2.0), strict=True):
        assert ceiling / 2 <= delay <= ceiling, sleeps


class Trickling(Replay):
    """A watch whose connection stays up and sends only blank lines (a middlebox keeping it alive,
    or an apiserver gone silent behind one): no read ever times out."""

    @asynccontextmanager
    async def watch_stream(
        self, path: str, params: Mapping[str, str], *, read_timeout_s: float
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        self.watch_params.append(dict(params))
        yield _blank_lines()


async def _blank_lines() -> AsyncIterator[bytes]:
    while True:
        await asyncio.sleep(0.01)
        yield b"\n"


async def test_a_watch_open_past_the_servers_timeout_stops_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server ends every watch at timeoutSeconds; one still open past it (plus the call timeout)
    is broken however busy it looks, so the cache stops serving and lists again."""
    monkeypatch.setattr(control_cache, "WATCH_TIMEOUT_S", (0, 0))
    monkeypatch.setattr(control_cache, "BACKOFF_S", (0.001, 0.002))
    client = Trickling(lists=[LIST], watches=[])
    inf = Informer(
        client, "/apis/argoproj.io/v1alpha1/applications", API, KIND, Budget(1 << 20), call_timeout_s=0.2
    )
    states: list[str] = []
    original = inf._set
    inf._set = lambda state: (states.append(state), original(state))[1]  # type: ignore[method-assign,func-returns-value]
    task = await run_until_parked(inf, client)  # parked: the relist found no second list to read
    try:
        assert states[:3] == ["listing", "synced", "watching"]
        assert "backoff" in states[3:] and not inf.serving and inf.get("shop", "web") is None
        assert len(client.list_params) == 2, "listed again after the stuck watch"
    finally:
        await stop(task)


async def test_a_line_without_end_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control_cache, "MAX_LINE_BYTES", 1000)

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 100

    with pytest.raises(WatchError, match="over 1000 bytes"):
        async for _ in _lines(endless()):
            pass


def _page(names: list[str], token: str) -> bytes:
    items = [{"metadata": {"name": n, "namespace": "shop"}, "spec": {"project": "default"}} for n in names]
    return orjson.dumps({"items": items, "metadata": {"resourceVersion": "9", "continue": token}})


async def test_a_relist_stops_downloading_once_it_cannot_fit() -> None:
    """Over the cap is known after the page that passes it: no further page is asked for."""
    pages: list[bytes | Exception] = [_page([f"a{i}" for i in range(20)], "next"), _page(["b"], "")]
    client = Replay(lists=pages, watches=[])
    inf = informer(client, cap=500)
    task = asyncio.create_task(inf.run())
    try:
        await until_state(inf, "over_cap")
        assert len(client.list_params) == 1 and "continue" not in client.list_params[0]
        assert inf._budget.used == 0 and client.watch_params == []
    finally:
        await stop(task)


async def test_a_list_the_parser_refuses_backs_off_long_without_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An Application nested deeper than orjson reads (Go's encoder writes it) fails every relist the
    same way: a long backoff, not a relist of the whole collection every few seconds."""
    deep = (
        b'{"items":[{"metadata":{"name":"x","namespace":"shop"},"spec":'
        + b'{"a":' * 1100
        + b"1"
        + b"}" * 1100
        + b"}]}"
    )
    client = Replay(lists=[deep], watches=[])
    inf = informer(client)
    reasons: list[str] = []
    original = inf._fail
    inf._fail = lambda state, reason: (reasons.append(reason), original(state, reason))[1]  # type: ignore[method-assign,func-returns-value]
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        waits.append(delay)
        await real_sleep(3600)

    monkeypatch.setattr(control_cache.asyncio, "sleep", sleep)
    task = asyncio.create_task(inf.run())
    try:
        async with asyncio.timeout(10):
            while not waits:
                await real_sleep(0.001)
        assert waits == [control_cache.FORBIDDEN_BACKOFF_S] and not inf.serving
        assert reasons and "cannot be read" in reasons[0]
    finally:
        await stop(task)


async def test_a_closed_cache_starts_nothing() -> None:
    cache = ControlCache(Replay(lists=[], watches=[]), "argocd", call_timeout_s=3)
    await cache.aclose()
    cache.start()  # a build still running at shutdown
    assert not cache.started
