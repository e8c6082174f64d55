"""The reads of one question, issued by stage: list calls by namespace and kind, and one memoized GET
per object, shared by the scope check, the gatherer and the relation walkers.

The gather has two dependent stages after the Application: stage 1 is everything the Application
(and the selected resource's reference) already names, issued at once; stage 2 is what needs a
stage-1 answer (logs of the Pods found, their Nodes and ConfigMaps). To get there, what used to be
read object by object after its parent arrived is read here by namespace: the namespace's Pods,
ReplicaSets, Jobs and Events are each one list (``limit`` bounded), started before the parents
arrive and filtered locally by the parents' selectors and owner uids once they do. A list of a kind
also answers the memoized GET for any object it holds, so owner chains (Pod -> ReplicaSet ->
Deployment) resolve without a round trip per hop.

Nothing here decides scope: every object still passes :mod:`.scope` (and the relation predicate)
exactly as one read by a GET would. Speculative reads are confined to what scope already allows to
be read: listed entries the AppProject permits, and lists in namespaces it permits; their answers
are used only for objects that pass the same checks. A list the server cut at ``limit`` (a
``continue`` token; docs/upstream-facts.md, Kubernetes) is said in a note, and callers fall back
to the precise per-object call for what the list may have missed.

Repeat questions (:class:`Footprints`): the reads a question made in its destination (which lists
by namespace and kind, which objects by name: API paths, never what they returned) are remembered
per Application for a few minutes, so the next question about it starts them with the
Application's own round trip instead of after it (:class:`EarlyReads`). Nothing started early is
used before the fresh Application, AppProject and argocd-cm are in: :meth:`Reads.adopt` keeps only
the reads in the same destination cluster and in namespaces the fresh Application names (its
destination, its listed resources) and the fresh AppProject permits, cancels the rest unread, and
what it keeps answers only the reads the gather asks for on its own, after the same scope checks.
Stage 2 starts early too: the Pod logs the last question read (in those namespaces) and the Nodes
its Pods ran on (cluster-scoped, :data:`EARLY_CLUSTER_KINDS`), under the same rule: a Node or a log
is used only when the gather, from the fresh answers, asks for that very one.

Kubernetes naming relied on for the owner prefetch (docs/upstream-facts.md, Kubernetes): a
controller names what it creates ``<owner name>-<suffix>`` (ReplicaSets of a Deployment, Pods of a
ReplicaSet, StatefulSet, DaemonSet or Job, Jobs of a CronJob). A guess only saves a round trip; the
owner chain still checks every uid, and a wrong guess is never used.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .application import destination, resources
from .kube import KubeClient, KubeError, Page
from .scope import ScopeRules

MAX_NAMESPACE_PODS = 200  # one list of a namespace's Pods per question (also the relation walkers')
MAX_NAMESPACE_OBJECTS = 500  # ReplicaSets, Jobs, workloads of a namespace
MAX_EVENTS_PER_NAMESPACE = 500
FOOTPRINT_TTL_S = 600.0  # a footprint older than this starts nothing
MAX_FOOTPRINTS = 512  # Applications remembered per process (least recently asked about dropped first)
MAX_FOOTPRINT_READS = 48  # reads remembered per Application: an upper bound on what starts early

# Kinds whose controllers name what they create "<name>-<suffix>", and what they create.
_CREATES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("apps", "Deployment"): (("apps", "ReplicaSet"),),
    ("apps", "ReplicaSet"): (("", "Pod"),),
    ("apps", "StatefulSet"): (("", "Pod"),),
    ("apps", "DaemonSet"): (("", "Pod"),),
    ("batch", "Job"): (("", "Pod"),),
    ("batch", "CronJob"): (("batch", "Job"),),
    ("", "ReplicationController"): (("", "Pod"),),
}
WORKLOADS = frozenset(_CREATES)

Note = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Listed:
    """A namespace's objects of one kind: ``cut`` when there were more than the list's limit."""

    items: tuple[dict[str, Any], ...]
    cut: bool

    def named(self, name: str) -> dict[str, Any] | None:
        for item in self.items:
            if (item.get("metadata") or {}).get("name") == name:
                return dict(item)
        return None


def _plural(kind: str) -> str:
    return kind + ("es" if kind.endswith("s") else "s")


def _limit(kind: str) -> int:
    if kind == "Pod":
        return MAX_NAMESPACE_PODS
    if kind == "Event":
        return MAX_EVENTS_PER_NAMESPACE
    return MAX_NAMESPACE_OBJECTS


ListKey = tuple[str, str, str]  # (group, kind, namespace)
GetKey = tuple[str, str, str, str, str | None]  # (group, kind, name, namespace, version or None)
LogKey = tuple[str, str, str, bool]  # (namespace, pod, container, previous)
EventsKey = tuple[str, str, str]  # (kind, name, namespace): one object's events, by field selector
# Cluster-scoped objects a footprint may start early: where the Pods ran (stage 2 of a question).
EARLY_CLUSTER_KINDS = frozenset({("", "Node")})


@dataclass(frozen=True, slots=True)
class Footprint:
    """Where a question about an Application read last time: its destination (``server``, ``name``
    of ``spec.destination``) and the API paths it read there. Locations only, never content."""

    server: str
    name: str
    lists: tuple[ListKey, ...]
    gets: tuple[GetKey, ...]
    logs: tuple[LogKey, ...] = ()
    events: tuple[EventsKey, ...] = ()


FootprintKey = tuple[str, str, str, str]  # (control-plane namespace, app namespace, app name, project)


class Footprints:
    """The last footprint per Application, in this process: a bounded LRU whose entries expire
    after ``ttl_s`` (a destination may move; an expired footprint only costs the round trip)."""

    def __init__(
        self,
        *,
        size: int = MAX_FOOTPRINTS,
        ttl_s: float = FOOTPRINT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._ttl = ttl_s
        self._clock = clock
        self._entries: OrderedDict[FootprintKey, tuple[float, Footprint]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def recall(self, key: FootprintKey) -> Footprint | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if self._clock() - found[0] >= self._ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    def remember(self, key: FootprintKey, footprint: Footprint) -> None:
        self._entries[key] = (self._clock(), footprint)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, key: FootprintKey) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


def named_namespaces(rules: ScopeRules) -> frozenset[str]:
    """The namespaces the Application names (its destination's, its listed resources') that its
    AppProject permits: the only ones a read started before the Application arrived may be from."""
    named = {str(destination(rules.app).get("namespace") or "")}
    named.update(str(e.get("namespace") or "") for e in resources(rules.app))
    return frozenset(ns for ns in named if ns and rules.permissions.namespace_permitted(ns))


class EarlyReads:
    """The reads of a footprint, started in one destination cluster while the Application is read.
    Raw calls: no note, no answer, until :meth:`Reads.adopt` keeps them or cancels them."""

    def __init__(self, client: KubeClient, footprint: Footprint, *, log_lines: int = 0) -> None:
        self.client = client
        self.log_lines = log_lines
        self.lists: dict[ListKey, asyncio.Task[Page | None]] = {
            key: _task(client.list_page(key[0], key[1], key[2], limit=_limit(key[1])))
            for key in footprint.lists
        }
        self.gets: dict[GetKey, asyncio.Task[dict[str, Any] | None]] = {
            key: _task(client.get(key[0], key[1], key[2], key[3] or None, key[4])) for key in footprint.gets
        }
        self.logs: dict[LogKey, asyncio.Task[str | None]] = {
            key: _task(client.pod_log(key[0], key[1], key[2], previous=key[3], tail_lines=log_lines))
            for key in (footprint.logs if log_lines > 0 else ())
        }
        self.events: dict[EventsKey, asyncio.Task[list[dict[str, Any]] | None]] = {
            key: _task(_events_of(client, *key)) for key in footprint.events
        }

    def cancel(self) -> None:
        for task in (*self.lists.values(), *self.gets.values(), *self.logs.values(), *self.events.values()):
            task.cancel()


class Reads:
    """The reads of one question against one destination cluster."""

    def __init__(self, client: KubeClient, rules: ScopeRules, note: Note) -> None:
        self.client = client
        self.rules = rules
        self._note = note
        self._lists: dict[tuple[str, str, str], asyncio.Task[Listed | None]] = {}
        self._gets: dict[tuple[str, str, str, str | None], asyncio.Future[dict[str, Any] | None]] = {}
        self._entry_gets: dict[GetKey, asyncio.Task[dict[str, Any] | None]] = {}
        # Reads started before the Application arrived and kept by adopt(): used only when asked for.
        self._early_lists: dict[ListKey, asyncio.Task[Page | None]] = {}
        self._early_gets: dict[GetKey, asyncio.Task[dict[str, Any] | None]] = {}
        self._early_logs: dict[LogKey, asyncio.Task[str | None]] = {}
        self._early_log_lines = 0
        self._logs: dict[tuple[str, str, str, bool, int], asyncio.Task[str | None]] = {}
        # What this question asked the server for (its footprint, for the next question).
        self._wanted_lists: list[ListKey] = []
        self._sent_gets: list[GetKey] = []
        self._sent_logs: list[LogKey] = []
        self._early_events: dict[EventsKey, asyncio.Task[list[dict[str, Any]] | None]] = {}
        self._sent_events: list[EventsKey] = []

    # ---- early reads (repeat questions) ----

    def adopt(self, early: EarlyReads | None, namespaces: frozenset[str]) -> None:
        """Keep the early reads in this question's cluster and in ``namespaces`` (named by the fresh
        Application and permitted by the fresh AppProject: :func:`named_namespaces`); cancel every
        other one unread. A kept read answers only the same read asked for later by this question."""
        if early is None:
            return
        same_cluster = early.client is self.client
        for key, listing in early.lists.items():
            if same_cluster and key[2] in namespaces:
                self._early_lists[key] = listing
            else:
                listing.cancel()
        for get_key, read in early.gets.items():
            if same_cluster and (get_key[3] in namespaces or _early_cluster_get(get_key)):
                self._early_gets[get_key] = read
            else:
                read.cancel()
        for events_key, found in early.events.items():
            if same_cluster and events_key[2] in namespaces:
                self._early_events[events_key] = found
            else:
                found.cancel()
        self._early_log_lines = early.log_lines
        for log_key, tail in early.logs.items():
            if same_cluster and log_key[0] in namespaces:
                self._early_logs[log_key] = tail
            else:
                tail.cancel()

    def footprint(self, namespaces: frozenset[str]) -> tuple[tuple[ListKey, ...], tuple[GetKey, ...]]:
        """The lists and GETs this question asked the server for, in ``namespaces`` only."""
        lists = tuple(dict.fromkeys(k for k in self._wanted_lists if k[2] in namespaces))
        gets = tuple(dict.fromkeys(k for k in self._sent_gets if k[3] in namespaces or _early_cluster_get(k)))
        return lists[:MAX_FOOTPRINT_READS], gets[: max(0, MAX_FOOTPRINT_READS - len(lists))]

    def footprint_logs(self, namespaces: frozenset[str], room: int) -> tuple[LogKey, ...]:
        """The Pod logs this question read, in ``namespaces`` only, at most ``room``."""
        return tuple(dict.fromkeys(k for k in self._sent_logs if k[0] in namespaces))[: max(0, room)]

    def footprint_events(self, namespaces: frozenset[str], room: int) -> tuple[EventsKey, ...]:
        """The objects whose own events this question listed, in ``namespaces`` only, at most ``room``."""
        return tuple(dict.fromkeys(k for k in self._sent_events if k[2] in namespaces))[: max(0, room)]

    async def events_of(self, kind: str, name: str, namespace: str | None) -> list[dict[str, Any]] | None:
        """One object's Events by field selector (the caller memoizes); a repeat question's may
        have started early. Raises KubeError like the list it is."""
        key = (kind, name, namespace or "")
        self._sent_events.append(key)
        early = self._early_events.pop(key, None)
        return await (early if early is not None else _events_of(self.client, *key))

    # ---- logs ----

    async def log(
        self, namespace: str, pod: str, container: str, *, previous: bool, tail_lines: int
    ) -> str | None:
        """A Pod's log (memoized per question); a repeat question's may have started early."""
        key = (namespace, pod, container, previous, tail_lines)
        if key not in self._logs:
            self._sent_logs.append(key[:4])
            early = self._early_logs.pop(key[:4], None)
            if early is not None and self._early_log_lines != tail_lines:
                early.cancel()
                early = None
            self._logs[key] = (
                early
                if early is not None
                else _task(
                    self.client.pod_log(namespace, pod, container, previous=previous, tail_lines=tail_lines)
                )
            )
        return await asyncio.shield(self._logs[key])

    # ---- lists ----

    def listing(self, group: str, kind: str, namespace: str) -> asyncio.Task[Listed | None]:
        """One list of a namespace's objects of a kind per question, started on first ask. ``None``
        when it failed (the note says why) or the kind is not served."""
        key = (group, kind, namespace)
        if key not in self._lists:
            self._wanted_lists.append(key)
            self._lists[key] = _task(self._list(group, kind, namespace, _limit(kind)))
        return self._lists[key]

    async def _list(self, group: str, kind: str, namespace: str, limit: int) -> Listed | None:
        what = "events" if kind == "Event" else _plural(kind)
        early = self._early_lists.pop((group, kind, namespace), None)
        try:
            page: Page | None = await (
                early if early is not None else self.client.list_page(group, kind, namespace, limit=limit)
            )
        except KubeError as exc:
            self._note(f"could not read {what} in namespace {namespace}: {exc.reason}")
            return None
        if page is None:
            return None
        if page.cut:
            self._note(
                f"namespace {namespace} has more than {limit} {what}: only the first {limit} were "
                "listed (the objects looked into were read one by one)"
            )
        return Listed(tuple(page.items), page.cut)

    async def listed(self, group: str, kind: str, namespace: str) -> Listed | None:
        # Shielded: one caller hitting the deadline must not cancel a list others wait for.
        return await asyncio.shield(self.listing(group, kind, namespace))

    async def pods(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's Pods (the relation walkers' selector and claim relations)."""
        found = await self.listed("", "Pod", namespace)
        return [dict(p) for p in found.items] if found is not None else []

    # ---- objects ----

    async def fetch(self, group: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        """A memoized GET (scope.Fetch): answered by this question's list of the kind in that
        namespace when one was started and holds the object, else one GET per object."""
        key = (group, kind, name, namespace)
        if key not in self._gets:
            self._gets[key] = _task(self._fetch(group, kind, name, namespace))
        found = await asyncio.shield(self._gets[key])
        return dict(found) if found is not None else None  # callers may fill in fields

    async def _fetch(self, group: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        early = self._early_gets.pop((group, kind, name, namespace or "", None), None)
        listing = self._lists.get((group, kind, namespace or ""))
        if listing is not None:
            found = await asyncio.shield(listing)
            obj = found.named(name) if found is not None else None
            if obj is not None:
                if early is not None:
                    early.cancel()
                return obj
        self._sent_gets.append((group, kind, name, namespace or "", None))
        return await (early if early is not None else self.client.get(group, kind, name, namespace))

    async def entry_get(
        self, group: str, kind: str, name: str, namespace: str | None, version: str | None
    ) -> dict[str, Any] | None:
        """A listed entry's own GET, in the version Argo CD lists it in (memoized; a repeat
        question's may have started early)."""
        key = (group, kind, name, namespace or "", version or None)
        if key not in self._entry_gets:
            self._sent_gets.append(key)
            early = self._early_gets.pop(key, None)
            self._entry_gets[key] = (
                early if early is not None else _task(self.client.get(group, kind, name, namespace, version))
            )
        found = await asyncio.shield(self._entry_gets[key])
        return dict(found) if found is not None else None

    def seed(self, obj: Mapping[str, Any], group: str) -> None:
        """An object read by its own GET (a problem resource) answers later fetches of it."""
        meta = obj.get("metadata") or {}
        key = (group, str(obj.get("kind")), str(meta.get("name")), meta.get("namespace") or None)
        if key not in self._gets:
            done: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
            done.set_result(dict(obj))
            self._gets[key] = done

    def prefetch(self, group: str, kind: str, name: str, namespace: str | None) -> None:
        """Start a memoized GET now, for an answer wanted later in the same stage."""
        key = (group, kind, name, namespace)
        if key not in self._gets:
            self._gets[key] = _task(self._fetch(group, kind, name, namespace))

    # ---- stage 1 plans ----

    def start_for(self, group: str, kind: str, name: str, namespace: str | None) -> None:
        """Stage 1 for an object whose scope is already decided (a readable listed entry, or the
        selected resource after its scope check): the lists its children, events and relations
        are filtered from, in its namespace."""
        if not namespace:
            return
        self.listing("", "Event", namespace)
        wanted: set[tuple[str, str]] = set()
        if (group, kind) in WORKLOADS:
            wanted.add(("", "Pod"))
            wanted.update(_CREATES[(group, kind)])
            if (group, kind) == ("batch", "CronJob"):
                wanted.add(("", "Pod"))  # the latest Job's Pods
        elif (group, kind) == ("", "Service"):
            wanted.add(("", "Pod"))
            self.prefetch("", "Endpoints", name, namespace)
            # Pods matched by the selector are shown only if an owner chain reaches the Application:
            # the owners it may reach are the workloads the Application lists in that namespace.
            wanted.update(self._listed_workloads(namespace))
            if ("apps", "Deployment") in wanted:
                wanted.add(("apps", "ReplicaSet"))
            if ("batch", "CronJob") in wanted:
                wanted.add(("batch", "Job"))
        for g, k in sorted(wanted):
            self.listing(g, k, namespace)

    def prefetch_owners(self, group: str, kind: str, name: str, namespace: str | None) -> None:
        """Alongside the scope check of a selection the Application does not list: GET the owners
        its name suggests (``<owner>-<suffix>``), but only readable listed workloads and the
        intermediate objects between them and the selection (a Deployment's ReplicaSet), so the
        owner chain is one stage instead of one per hop. Nothing is used unless the chain checks."""
        if not namespace or not self.rules.permissions.namespace_permitted(namespace):
            return
        for entry in self._entries(namespace):
            owner = (str(entry.get("group") or ""), str(entry.get("kind") or ""))
            owner_name = str(entry.get("name") or "")
            if owner not in WORKLOADS or not name.startswith(owner_name + "-"):
                continue
            if self.rules.unreadable_reason(entry) is not None:
                continue
            self.prefetch(*owner, owner_name, namespace)
            if (group, kind) == ("", "Pod") and owner == ("apps", "Deployment"):
                # Pod <deployment>-<hash>-<suffix>: its ReplicaSet is <deployment>-<hash>.
                replica_set = name.rsplit("-", 1)[0]
                if replica_set.startswith(owner_name + "-") and replica_set != owner_name:
                    self.prefetch("apps", "ReplicaSet", replica_set, namespace)
            if (group, kind) == ("", "Pod") and owner == ("batch", "CronJob"):
                self.prefetch("batch", "Job", name.rsplit("-", 1)[0], namespace)

    def _entries(self, namespace: str) -> Iterable[Mapping[str, Any]]:
        return [e for e in resources(self.rules.app) if (e.get("namespace") or "") == namespace]

    def _listed_workloads(self, namespace: str) -> set[tuple[str, str]]:
        return {
            (str(e.get("group") or ""), str(e.get("kind") or ""))
            for e in self._entries(namespace)
            if (str(e.get("group") or ""), str(e.get("kind") or "")) in WORKLOADS
            and self.rules.unreadable_reason(e) is None
        }

    def close(self) -> None:
        """Cancel what is still in flight when the question's gather ends (deadline, refusal)."""
        for listing in (*self._lists.values(), *self._early_lists.values()):
            listing.cancel()
        for read in (*self._gets.values(), *self._entry_gets.values(), *self._early_gets.values()):
            read.cancel()
        for tail in (*self._logs.values(), *self._early_logs.values()):
            tail.cancel()
        for found in self._early_events.values():
            found.cancel()


async def _events_of(client: KubeClient, kind: str, name: str, namespace: str) -> list[dict[str, Any]] | None:
    selector = f"involvedObject.name={name},involvedObject.kind={kind}"
    return await client.list(
        "", "Event", namespace or None, field_selector=selector, limit=MAX_EVENTS_PER_NAMESPACE
    )


def _early_cluster_get(key: GetKey) -> bool:
    """A cluster-scoped GET a footprint may start early (a Node the Pods ran on)."""
    return not key[3] and (key[0], key[1]) in EARLY_CLUSTER_KINDS


def _task(call: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    # The coroutine itself, not a wrapper awaiting it: a task cancelled before it ran then closes it
    # (a wrapper would leave the inner coroutine "never awaited").
    task = asyncio.ensure_future(call)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved, even if unawaited
    return task
