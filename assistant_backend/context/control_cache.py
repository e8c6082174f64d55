"""A list+watch cache of the control plane's Applications, AppProjects and argocd-cm.

Why: every question reads its Application (with the AppProject and argocd-cm) before anything in
the destination can be scoped, so without a cache that read is one dependent round trip on the
critical path of every build. Argo CD itself does not pay it either: its API server and its proxy
extension read Applications and AppProjects from informer caches (docs/upstream-facts.md, "Argo CD
API" and "Argo CD proxy extension").

Why the cache is as fresh as what Argo CD authorised: the request reached us because Argo CD's
proxy extension checked the caller's RBAC and the header's project against the Application *as
its own informer cache had it*, a watch of the same objects on the same apiserver. Ours lags the
apiserver by the same watch delay (milliseconds while connected), and is used only while it is
listed and its watch stream is open; a stream that went silent longer than the watch's server
timeout plus the call timeout is treated as broken. The cache only ever *confirms*: a cached
Application in the header's project, an AppProject or argocd-cm it holds, is served; anything it
does not hold (but argocd-cm, which may well not exist), or an Application it holds in another
project, is asked of the apiserver with a GET as without the cache, so a new Application is never a false 404 and a deleted or moved one is a
404 or a refusal exactly as before (the GET decides).

Watch semantics (docs/upstream-facts.md, Kubernetes): a paginated list gives the collection's
``resourceVersion``; a watch from it (``allowWatchBookmarks``, a server-side ``timeoutSeconds``)
streams one JSON event per line: ADDED / MODIFIED / DELETED carry the object, BOOKMARK only a newer
``resourceVersion``, ERROR a Status (410 Gone: the version is too old, relist). A stream that ends
(the server's timeout) is re-watched from the last version seen; any failure backs off (jittered,
exponential) and relists. A 401/403 on list or watch (an RBAC without list/watch) backs off long.

Memory is bounded: each object is kept as orjson bytes without ``metadata.managedFields`` (what the
GET path strips too, so both answers are the same dict), parsed on read; past ``max_bytes`` in all
stores together the informer that would pass it drops its store, serves nothing and retries after the
long backoff (the others keep serving what they hold).
Lines and list pages above :data:`OFF_LOOP_BYTES` are parsed in a worker thread, like the engine's
render, so one Application with thousands of resources never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol, TypeVar

import orjson

from ..identity import Caller
from .application import compact, project_of, read_application, read_argocd_cm, read_project
from .kube import Forbidden, Gone, KubeClient, KubeError, segment

log = logging.getLogger(__name__)

# All stores together; about 8 MB for 1,000 Applications of 20 resources (bench/context.py measures it).
MAX_CACHE_BYTES = 128 * 1024 * 1024
OFF_LOOP_BYTES = 256 * 1024
LIST_PAGE = 500
CLIENT_NAME = "watch"  # the cache's own KubeClient (its calls are not a build's: tests/support/kube_calls.py)
# The server ends each watch after this many seconds (randomised, as client-go does, so replicas do
# not re-watch in step). A watch still open past it plus the call timeout is a broken stream (a
# connection dropped without a reset, or a middlebox trickling bytes): the cache stops serving and
# relists. So a silently broken watch serves at most this long (+ the call timeout); re-watching is
# cheap (the apiserver's watch cache answers it) and stays under load balancers' idle timeouts.
WATCH_TIMEOUT_S = (15, 25)
# A list page off the critical path may take longer than a question's call timeout (500 large
# Applications are tens of MB).
LIST_PAGE_TIMEOUT_S = 30.0
# One watch line (one object) above this is refused: the stream is broken or hostile.
MAX_LINE_BYTES = 16 * 1024 * 1024
BACKOFF_S = (0.5, 30.0)
FORBIDDEN_BACKOFF_S = 300.0  # RBAC without list/watch, or over the byte cap: GETs meanwhile

State = Literal["starting", "listing", "synced", "watching", "backoff", "forbidden", "over_cap", "stopped"]
Key = tuple[str, str]  # (namespace, name)


class WatchClient(Protocol):
    """What the informers need of a :class:`~.kube.KubeClient` (a seam for the unit tests)."""

    async def get_bytes(self, path: str, params: Mapping[str, str] | None = None) -> bytes | None: ...

    def watch_stream(
        self, path: str, params: Mapping[str, str], *, read_timeout_s: float
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    async def aclose(self) -> None: ...


class OverCap(Exception):
    """The stores would hold more than their byte cap."""


class WatchError(Exception):
    """An ERROR event that is not 410 Gone, or a line that is not a watch event."""


class UndecodableList(Exception):
    """A list page the parser refuses (e.g. an object nested deeper than orjson reads): relisting
    at once would fail the same way."""


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    key: Key
    resource_version: str
    data: bytes  # the compacted object (empty for BOOKMARK and DELETED)


def decode_event(line: bytes, api_version: str, kind: str) -> Event:
    """One watch line -> an Event; raises Gone on ERROR 410, WatchError on other ERRORs or junk."""
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise WatchError("a watch line that is not JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("object"), dict):
        raise WatchError("a watch line that is not an event")
    kind_of_event, obj = str(raw.get("type") or ""), raw["object"]
    if kind_of_event == "ERROR":
        code = obj.get("code")
        if code == 410:
            raise Gone("resource version expired", 410)
        raise WatchError(f"watch ERROR {code}: {str(obj.get('reason') or '')[:80]}")
    if kind_of_event not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        raise WatchError(f"unknown watch event type {kind_of_event[:20]!r}")
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    if kind_of_event in ("BOOKMARK", "DELETED"):
        return Event(kind_of_event, key_of(obj), rv, b"")
    obj.setdefault("apiVersion", api_version)
    obj.setdefault("kind", kind)
    return Event(kind_of_event, key_of(obj), rv, orjson.dumps(compact(obj)))


def decode_page(body: bytes, api_version: str, kind: str) -> tuple[list[tuple[Key, bytes]], str, str]:
    """A list page -> (compacted items, the list's resourceVersion, its continue token)."""
    raw = orjson.loads(body)
    if not isinstance(raw, dict):
        raise WatchError("a list that is not an object")
    meta = raw.get("metadata") or {}
    items = []
    for item in raw.get("items") or []:
        if isinstance(item, dict):
            # List items carry no apiVersion/kind; a GET's answer does: fill them in, same dict.
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            items.append((key_of(item), orjson.dumps(compact(item))))
    return items, str(meta.get("resourceVersion") or ""), str(meta.get("continue") or "")


class Budget:
    """Bytes held by every store of one cache, against one cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0


class Store:
    """Compacted objects of one kind by (namespace, name), their bytes counted against a Budget."""

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self._objects: dict[Key, bytes] = {}

    def __len__(self) -> int:
        return len(self._objects)

    @property
    def size(self) -> int:
        """The bytes held."""
        return sum(len(v) for v in self._objects.values())

    def get(self, key: Key) -> bytes | None:
        return self._objects.get(key)

    def put(self, key: Key, data: bytes) -> None:
        old = self._objects.get(key)
        grow = len(data) - (len(old) if old is not None else 0)
        if self._budget.used + grow > self._budget.cap:
            raise OverCap
        self._objects[key] = data
        self._budget.used += grow

    def delete(self, key: Key) -> None:
        old = self._objects.pop(key, None)
        if old is not None:
            self._budget.used -= len(old)

    def replace(self, items: list[tuple[Key, bytes]]) -> None:
        """A relist: exactly these objects (what the watch missed while down is gone)."""
        self.clear()
        for key, data in items:
            self.put(key, data)

    def clear(self) -> None:
        self._budget.used -= sum(len(v) for v in self._objects.values())
        self._objects.clear()

    def apply(self, event: Event) -> None:
        if event.type == "DELETED":
            self.delete(event.key)
        elif event.type in ("ADDED", "MODIFIED"):
            self.put(event.key, event.data)


T = TypeVar("T")


async def _off_loop_if_large(size: int, call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call) if size > OFF_LOOP_BYTES else call()


class Informer:
    """List+watch of one collection into a Store; serves reads only while listed and watching."""

    def __init__(
        self,
        client: WatchClient,
        path: str,
        api_version: str,
        kind: str,
        budget: Budget,
        *,
        field_selector: str = "",
        call_timeout_s: float,
    ) -> None:
        self.client = client
        self.path = path
        self.api_version = api_version
        self.kind = kind
        self.store = Store(budget)
        self._budget = budget
        self.state: State = "starting"
        self.failures = 0
        self._field_selector = field_selector
        self._call_timeout = call_timeout_s
        self._rv = ""
        self._served = asyncio.Event()

    @property
    def serving(self) -> bool:
        return self.state == "watching"

    async def wait_serving(self) -> None:
        await self._served.wait()

    def get(self, namespace: str, name: str) -> bytes | None:
        """The compacted object, or None when not held or the cache is not serving."""
        return self.store.get((namespace, name)) if self.serving else None

    def _set(self, state: State) -> None:
        self.state = state
        if state == "watching":
            self._served.set()
        else:
            self._served.clear()

    async def run(self) -> None:
        """Until cancelled: list, watch, re-watch; relist on 410 and failures, with backoff."""
        attempt = gone = 0
        while True:
            try:
                self._set("listing")
                await self._list()
                while True:
                    if await self._watch():
                        attempt = gone = 0  # a watch that delivered: the next failure starts quick
            except asyncio.CancelledError:
                self._set("stopped")
                self.store.clear()
                raise
            except Gone:
                # Relist at once: the version is too old, nothing is wrong; unless it keeps coming.
                gone += 1
                if gone > 2:  # jittered: replicas that lost their watches together do not relist in step
                    jitter = random.uniform(0.5, 1.0)  # noqa: S311 (spreading retries, not a secret)
                    await asyncio.sleep(jitter * min(BACKOFF_S[1], BACKOFF_S[0] * 2 ** (gone - 3)))
            except Forbidden as exc:
                self._fail("forbidden", exc.reason)
                await asyncio.sleep(FORBIDDEN_BACKOFF_S)
            except OverCap:
                self._fail("over_cap", f"more than {self._budget.cap} bytes")
                await asyncio.sleep(FORBIDDEN_BACKOFF_S)
            except UndecodableList as exc:  # an object the parser refuses stays there: no relist loop
                self._fail("backoff", str(exc))
                await asyncio.sleep(FORBIDDEN_BACKOFF_S)
            except Exception as exc:  # anything else too: a dead task must never keep serving
                if isinstance(exc, KubeError):
                    reason = exc.reason
                elif isinstance(exc, WatchError | orjson.JSONDecodeError | TimeoutError):
                    reason = str(exc) or type(exc).__name__
                else:
                    log.exception("control-plane cache of %s failed", self.kind)
                    reason = type(exc).__name__
                self._fail("backoff", reason)
                attempt += 1
                low, high = BACKOFF_S
                jitter = random.uniform(0.5, 1.0)  # noqa: S311 (spreading retries, not a secret)
                await asyncio.sleep(jitter * min(high, low * 2 ** (attempt - 1)))

    def _fail(self, state: State, reason: str) -> None:
        self.store.clear()
        self.failures += 1
        if self.state != state:
            log.warning("control-plane cache of %s: %s (%s); reading with GETs", self.kind, state, reason)
        self._set(state)

    def _params(self) -> dict[str, str]:
        return {"fieldSelector": self._field_selector} if self._field_selector else {}

    async def _list(self) -> None:
        items: list[tuple[Key, bytes]] = []
        held = 0
        token = ""
        while True:
            params = {**self._params(), "limit": str(LIST_PAGE)}
            if token:
                params["continue"] = token
            body = await asyncio.wait_for(self.client.get_bytes(self.path, params), LIST_PAGE_TIMEOUT_S)
            if body is None:
                raise KubeError("the collection is not served", 404)
            try:
                page, rv, token = await _off_loop_if_large(
                    len(body), partial(decode_page, body, self.api_version, self.kind)
                )
            except (orjson.JSONDecodeError, WatchError) as exc:
                raise UndecodableList(f"a list page that cannot be read ({exc})") from None
            items += page
            held += sum(len(data) for _, data in page)
            if held + self._budget.used - self.store.size > self._budget.cap:
                raise OverCap  # stop downloading: the relist alone would not fit
            if not token:
                break
        self.store.replace(items)
        self._rv = rv
        self._set("synced")

    async def _watch(self) -> bool:
        """One watch from the last version; True if it delivered an event. Returns when the server
        ends it (re-watch); raises Gone (relist) or a failure."""
        timeout = random.randint(*WATCH_TIMEOUT_S)  # noqa: S311 (spreading re-watches)
        params = {
            **self._params(),
            "watch": "1",
            "resourceVersion": self._rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
        }
        delivered = False
        opened = asyncio.get_running_loop().time()
        async with (
            asyncio.timeout(timeout + self._call_timeout),  # the server must have ended it by then
            self.client.watch_stream(
                self.path, params, read_timeout_s=timeout + self._call_timeout
            ) as chunks,
            contextlib.aclosing(_lines(chunks)) as lines,
        ):
            self._set("watching")
            try:
                async for line in lines:
                    event = await _off_loop_if_large(
                        len(line), partial(decode_event, line, self.api_version, self.kind)
                    )
                    self.store.apply(event)
                    if event.resource_version:
                        self._rv = event.resource_version
                    delivered = True
            finally:
                if self.state == "watching":
                    self._set("synced")  # between two watches: GETs, until the next one is open
        if not delivered and asyncio.get_running_loop().time() - opened < 1.0:
            raise WatchError("the watch ended at once")  # back off instead of re-watching in a loop
        return delivered


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Newline-delimited lines of a byte stream (a watch event per line; a large one spans chunks)."""
    pending = bytearray()
    async for chunk in chunks:
        scanned = len(pending)  # no newline before this: search only the new bytes (linear)
        pending += chunk
        while (end := pending.find(b"\n", scanned)) >= 0:
            line = bytes(pending[:end])
            del pending[: end + 1]
            scanned = 0
            if line.strip():
                yield line
        if len(pending) > MAX_LINE_BYTES:
            raise WatchError(f"a watch line over {MAX_LINE_BYTES} bytes")
    if pending.strip():
        yield bytes(pending)


class ControlCache:
    """The three informers of the control plane, started in the background, stopped at aclose."""

    def __init__(
        self,
        client: WatchClient,
        control_plane: str,
        *,
        call_timeout_s: float,
        max_bytes: int = MAX_CACHE_BYTES,
    ) -> None:
        self.client = client
        self.control_plane = control_plane
        self.budget = Budget(max_bytes)
        ns = segment(control_plane)
        # Applications may live in any namespace (apps-in-any-namespace); AppProjects and argocd-cm
        # only in the control plane's.
        self.applications = Informer(
            client,
            "/apis/argoproj.io/v1alpha1/applications",
            "argoproj.io/v1alpha1",
            "Application",
            self.budget,
            call_timeout_s=call_timeout_s,
        )
        self.projects = Informer(
            client,
            f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/appprojects",
            "argoproj.io/v1alpha1",
            "AppProject",
            self.budget,
            call_timeout_s=call_timeout_s,
        )
        self.argocd_cm = Informer(
            client,
            f"/api/v1/namespaces/{ns}/configmaps",
            "v1",
            "ConfigMap",
            self.budget,
            field_selector="metadata.name=argocd-cm",
            call_timeout_s=call_timeout_s,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def informers(self) -> tuple[Informer, Informer, Informer]:
        return self.applications, self.projects, self.argocd_cm

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        """Start the informers on the running loop (idempotent; without one, the first build does)."""
        if self._tasks or self._closed:  # a build still running at shutdown starts nothing
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._tasks = [
            loop.create_task(informer.run(), name=f"control-cache-{informer.kind}")
            for informer in self.informers
        ]

    async def wait_serving(self, timeout_s: float) -> bool:
        """Wait until every informer serves (a benchmark's steady state); False after ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(i.wait_serving() for i in self.informers))
                return True
        return False

    def states(self) -> dict[str, State]:
        return {i.kind: i.state for i in self.informers}

    def serving(self) -> dict[str, bool]:
        """Per kind, whether reads are served from the cache now (Informer.serving)."""
        return {i.kind: i.serving for i in self.informers}

    async def aclose(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.client.aclose()

    # ---- reads (None: not from the cache, ask the apiserver) ----

    async def application(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._parsed(self.applications.get(namespace, name))

    async def project(self, name: str) -> dict[str, Any] | None:
        return await self._parsed(self.projects.get(self.control_plane, name))

    async def config_map(self) -> tuple[bool, dict[str, Any] | None]:
        """(served, argocd-cm): its absence is served too (a synced, watching cache knows it is
        absent, and argocd-cm, unlike the Application, is not known to exist: Argo CD's defaults)."""
        informer = self.argocd_cm
        if not informer.serving:
            return False, None
        return True, await self._parsed(informer.store.get((self.control_plane, "argocd-cm")))

    @staticmethod
    async def _parsed(data: bytes | None) -> dict[str, Any] | None:
        if data is None:
            return None
        obj = await _off_loop_if_large(len(data), partial(orjson.loads, data))
        return obj if isinstance(obj, dict) else None


class ControlPlane:
    """Where the engine's control-plane objects come from: the cache when it holds them (and, for the
    Application, in the header's project), else the GET it always made. Same dicts either way."""

    def __init__(self, client: KubeClient, control_plane: str, cache: ControlCache | None) -> None:
        self.client = client
        self.control_plane = control_plane
        self.cache = cache

    async def application(self, caller: Caller) -> dict[str, Any]:
        """The caller's Application; 404 / 403 decided by the GET (read_application), never the cache."""
        if self.cache is not None:
            app = await self.cache.application(caller.app_namespace, caller.app_name)
            if app is not None and project_of(app) == caller.project:
                return app
        return await read_application(self.client, caller)

    async def project(self, name: str) -> dict[str, Any] | None:
        """The AppProject; one the cache lacks is asked for (Argo CD found it to authorise the call)."""
        if self.cache is not None and (project := await self.cache.project(name)) is not None:
            return project
        return await read_project(self.client, self.control_plane, name)

    async def argocd_cm(self) -> dict[str, Any] | None:
        if self.cache is not None:
            served, config = await self.cache.config_map()
            if served:
                return config
        return await read_argocd_cm(self.client, self.control_plane)
