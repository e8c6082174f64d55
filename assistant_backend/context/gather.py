"""Read what a human would look at, concurrently, within a deadline.

For a selected resource: the live object, its events (field selector on the involved object), its
owners (from the scope check), its children and their Pods for workloads, the Service's Endpoints
and matching Pods, the PVCs of Pending Pods, and for unhealthy Pods (only under ``context.pod_logs:
backend``) the log tails (the previous container's too after a restart). For the Application itself: the same, shallower, for its
not-healthy or out-of-sync resources. Every call has a timeout; every failure becomes a note; the
snapshot keeps whatever arrived before the overall deadline.

Only objects in scope (:mod:`.scope`) are read in full: problem resources only when the AppProject
permits their namespace and Argo CD does not list them as Missing; Pods matched by a Service's
selector, and PVCs named by a Pod, only when they are owned by or tracked as the Application's
(the others are counted, never shown). Events are kept only when their involved object is one of
those: a shared namespace never leaks another application's events or logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from .application import problem_resources, resource_label
from .kube import KubeClient, KubeError
from .objects import (
    LogTail,
    Snapshot,
    about_any,
    container_statuses,
    group_of,
    label,
    label_selector_matches,
    labels_selector,
    meta,
    missing,
    not_served_note,
    owned_by,
    pod_unhealthy,
    revision_of,
    selector_matches,
    selector_string,
    uid,
)
from .reads import Reads
from .scope import Fetch, ScopeRules, statefulset_claim

T = TypeVar("T")

MAX_PROBLEM_RESOURCES = 8  # Application-level questions: how many problem resources to look into
MAX_PODS = 10
MAX_LOG_PODS = 3
MAX_EVENT_READS = 20  # per-object event reads when a namespace's event list was cut

# Waiting reasons where the container never started, so there is no log to read.
_NO_LOG_REASONS = {
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "ContainerCreating",
    "PodInitializing",
}


class RelationsHook(Protocol):
    """Relation walkers the engine may supply (issue 12, relations.py)."""

    async def first(self) -> None: ...  # after owners/children: relations that add Pods

    async def late(self) -> None: ...  # alongside the second stage: relations that add facts

    def merge(self) -> None: ...  # after both: add what ``late`` reached


class Gatherer:
    def __init__(
        self,
        client: KubeClient,
        snapshot: Snapshot,
        rules: ScopeRules,
        fetch: Fetch,
        *,
        log_lines: int,
        read_logs: bool = True,
        relations: RelationsHook | None = None,
        reads: Reads | None = None,
    ) -> None:
        self.client = client
        self.snap = snapshot
        self.rules = rules
        self.fetch = fetch  # memoized GET, shared with the scope check
        # Stage-1 lists by namespace and kind (reads.py), shared with the scope check and walkers.
        self.reads = reads if reads is not None else Reads(client, rules, snapshot.note)
        self._target_events: dict[tuple[str, str, str | None], asyncio.Task[list[dict[str, Any]] | None]] = {}
        self.log_lines = log_lines
        self.read_logs = read_logs  # context.pod_logs: backend
        self.relations = relations

    async def _try(self, what: str, call: Awaitable[T]) -> T | None:
        try:
            return await call
        except KubeError as exc:
            self.snap.note(f"could not read {what}: {exc.reason}")
            return None

    # ---- entry points ----

    def start(self, group: str, kind: str, name: str, namespace: str | None) -> None:
        """Stage 1 for a selection whose scope is already decided without a read (a readable
        listed entry): its events and the namespace lists its children come from, issued with
        its own GET instead of after it."""
        self.reads.start_for(group, kind, name, namespace)
        self._events_of(kind, name, namespace)

    def _events_of(
        self, kind: str, name: str, namespace: str | None
    ) -> asyncio.Task[list[dict[str, Any]] | None]:
        key = (kind, name, namespace)
        if key not in self._target_events:
            what = f"events of {kind} {namespace + '/' if namespace else ''}{name}"
            call = self.reads.events_of(kind, name, namespace)  # by field selector (reads.py)
            self._target_events[key] = asyncio.ensure_future(self._try(what, call))
        return self._target_events[key]

    async def for_resource(self, obj: dict[str, Any]) -> None:
        ns = meta(obj).get("namespace")
        self.reads.start_for(group_of(obj), str(obj.get("kind")), str(meta(obj).get("name")), ns)
        events_call = self._events_of(str(obj.get("kind")), str(meta(obj).get("name")), ns)

        async def own_events() -> None:
            events = await asyncio.shield(events_call)
            self.snap.add_events(e for e in events or [] if about_any(e, [obj]))

        async def children_then_the_rest() -> None:
            await self._children(obj, depth=2)
            await self._with_relations([ns] if ns else [])

        # Its own events are not waited for: logs start as soon as the children (Pods) are known.
        await asyncio.gather(own_events(), children_then_the_rest())

    async def for_application(self, app: Mapping[str, Any]) -> None:
        problems = problem_resources(app)
        readable = self.rules.readable_entries(problems)
        unread: list[Awaitable[None]] = []
        for entry in problems:
            reason = self.rules.unreadable_reason(entry)
            if reason is None:
                continue
            if missing(entry):
                # Not read (a live object there is not ours); discovery still says whether the kind exists.
                unread.append(
                    self.note_missing(
                        str(entry.get("group") or ""),
                        str(entry.get("kind")),
                        resource_label(entry),
                        entry.get("version"),
                    )
                )
            else:
                self.snap.note(f"{resource_label(entry)}: not read, {reason}")
        entries = readable[:MAX_PROBLEM_RESOURCES]
        if len(readable) > MAX_PROBLEM_RESOURCES:
            self.snap.note(
                f"looked into the first {MAX_PROBLEM_RESOURCES} of {len(readable)} problem resources"
            )
        for listed in entries:  # stage 1: the lists their children come from, with their own GETs
            self.reads.start_for(
                str(listed.get("group") or ""),
                str(listed.get("kind")),
                str(listed.get("name")),
                listed.get("namespace") or None,
            )

        async def one(entry: Mapping[str, Any]) -> None:
            group, kind = entry.get("group") or "", str(entry.get("kind"))
            try:
                obj = await self.reads.entry_get(
                    group,
                    kind,
                    str(entry.get("name")),
                    entry.get("namespace") or None,
                    entry.get("version") or None,
                )
            except KubeError as exc:
                self.snap.note(f"could not read {resource_label(entry)}: {exc.reason}")
                return
            if obj is None:
                await self.note_missing(group, kind, resource_label(entry), entry.get("version"))
                return
            obj.setdefault("kind", entry.get("kind"))
            self.reads.seed(obj, group)
            self.snap.problems.append(obj)
            await self._children(obj, depth=1)

        await asyncio.gather(*(one(e) for e in entries), *unread[:MAX_PROBLEM_RESOURCES])
        namespaces = sorted({str(e.get("namespace")) for e in entries if e.get("namespace")})
        await self._with_relations(namespaces)

    async def note_missing(self, group: str, kind: str, what: str, version: str | None = None) -> None:
        """Say why an object could not be shown: its kind is not served (missing CRD, old API
        server), or it does not exist."""
        served = await self._try(f"API discovery for {kind}", self.client.resource(group, kind, version))
        if served is None:
            self.snap.note(not_served_note(group, kind, version, what))
        else:
            self.snap.note(f"{what} does not exist in the destination cluster")

    # ---- stages ----

    async def _children(self, obj: dict[str, Any], *, depth: int) -> None:
        group, kind = group_of(obj), str(obj.get("kind"))
        ns = meta(obj).get("namespace")
        spec = obj.get("spec") or {}
        owner = str(meta(obj).get("uid", ""))
        if kind == "Pod":
            self._add_pods([obj])
        elif (group, kind) == ("apps", "Deployment"):
            selector = spec.get("selector")
            sets, pods = await asyncio.gather(
                self._selected(
                    ("apps", "ReplicaSet", ns),
                    lambda labels: label_selector_matches(selector, labels),
                    f"ReplicaSets of {label(obj)}",
                    selector_string(selector),
                ),
                self._selected(
                    ("", "Pod", ns),
                    lambda labels: label_selector_matches(selector, labels),
                    f"Pods of {label(obj)}",
                    selector_string(selector),
                ),
            )
            mine = sorted((rs for rs in sets or [] if owned_by(rs, owner)), key=revision_of, reverse=True)
            mine = mine[:2]  # the current rollout and the one before it
            self.snap.related.extend(mine)
            uids = {str(meta(rs).get("uid")) for rs in mine}
            self._add_pods([p for p in pods or [] if any(owned_by(p, u) for u in uids)])
        elif (group, kind) in {
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("apps", "ReplicaSet"),
            ("batch", "Job"),
            ("", "ReplicationController"),
        }:
            selector = spec.get("selector")
            rc = kind == "ReplicationController"
            sel = selector_string(selector) if not rc else labels_selector(selector or {})
            pods = await self._selected(
                ("", "Pod", ns),
                lambda labels: (
                    selector_matches(selector, labels) if rc else label_selector_matches(selector, labels)
                ),
                f"Pods of {label(obj)}",
                sel,
            )
            self._add_pods([p for p in pods or [] if owned_by(p, owner)])
        elif (group, kind) == ("batch", "CronJob"):
            # The namespace's Jobs, as before: one list (reads.py), limit included.
            listed = await self.reads.listed("batch", "Job", ns) if ns else None
            jobs = list(listed.items) if listed is not None else None
            mine = sorted(
                (j for j in jobs or [] if owned_by(j, owner)),
                key=lambda j: str(meta(j).get("creationTimestamp", "")),
                reverse=True,
            )[:2]
            self.snap.related.extend(mine)
            if depth > 1:
                await asyncio.gather(*(self._children(j, depth=depth - 1) for j in mine[:1]))
        elif (group, kind) == ("", "Service"):
            endpoints, pods = await asyncio.gather(
                self._try(
                    f"Endpoints of {label(obj)}",
                    self.reads.fetch("", "Endpoints", str(meta(obj).get("name")), ns),
                ),
                self._pods_for_service(obj),
            )
            if endpoints is not None:
                endpoints.setdefault("kind", "Endpoints")
                self.snap.related.append(endpoints)
            self._add_pods(pods or [])

    async def _pods_for_service(self, svc: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        selector = (svc.get("spec") or {}).get("selector")
        if not selector:
            return []
        sel = labels_selector(selector)
        pods = await self._selected(
            ("", "Pod", meta(svc).get("namespace")),
            lambda labels: selector_matches(selector, labels),
            f"Pods of {label(svc)}",
            sel,
        )
        if not pods:
            return pods
        # A selector is a relation, not ownership: in a shared namespace it also matches other
        # applications' Pods, which are counted and never shown.
        mine, others = await self.rules.partition(pods, self.fetch)
        if others:
            self.snap.note(
                f"{len(others)} Pod(s) of another application also match the selector of {label(svc)} "
                "(not shown)"
            )
        return mine

    async def _selected(
        self,
        what: tuple[str, str, str | None],
        matches: Callable[[Mapping[str, Any]], bool],
        label_text: str,
        selector: str | None,
    ) -> list[dict[str, Any]] | None:
        """The objects of a kind a selector picks in a namespace: filtered from the namespace's one
        list (reads.py) when it holds them all, else (the list was cut) read by the selector as
        one call of their own. A failed list is not retried: its note says what is missing."""
        group, kind, ns = what
        if ns:
            listed = await self.reads.listed(group, kind, ns)
            if listed is None:
                return None
            if not listed.cut:
                return [dict(o) for o in listed.items if matches(meta(o).get("labels") or {})]
        return await self._try(label_text, self.client.list(group, kind, ns, label_selector=selector))

    def _add_pods(self, pods: Iterable[dict[str, Any]]) -> None:
        known = {uid(p) for p in self.snap.pods}
        fresh = [p for p in pods if uid(p) not in known]
        fresh.sort(key=lambda p: not pod_unhealthy(p))  # unhealthy first
        room = MAX_PODS - len(self.snap.pods)
        if len(fresh) > room:
            self.snap.note(f"showing {max(room, 0)} of {len(fresh) + len(self.snap.pods)} Pods")
        self.snap.pods.extend(fresh[: max(room, 0)])

    async def _with_relations(self, namespaces: list[str]) -> None:
        """The second stage, with the relation walkers around it when the engine supplied them."""
        if self.relations is None:
            await self._second_stage(namespaces)
            return
        await self.relations.first()  # ---- relation walkers (relations.py) ----
        await asyncio.gather(self._second_stage(self._namespaces(namespaces)), self.relations.late())
        self.relations.merge()

    def _namespaces(self, namespaces: list[str]) -> list[str]:
        """The namespaces whose events to read: those given, plus those of Pods a relation added."""
        extra = {str(meta(p).get("namespace")) for p in self.snap.pods if meta(p).get("namespace")}
        return sorted(set(namespaces) | extra)

    async def _second_stage(self, namespaces: list[str]) -> None:
        """Events of everything reached, logs of unhealthy Pods, PVCs of Pending Pods."""
        calls: list[Awaitable[None]] = [self._namespace_events(ns) for ns in namespaces]
        # Pods arrived in whatever order their reads finished: pick whose logs to read by name, so
        # the same cluster state always gives the same context (see engine._canonical_order).
        unhealthy = sorted((p for p in self.snap.pods if pod_unhealthy(p)), key=label)[:MAX_LOG_PODS]
        for pod in unhealthy if self.read_logs else []:
            calls.extend(self._logs(pod))
        claims: dict[tuple[str, str], Mapping[str, Any]] = {}
        for pod in self.snap.pods:
            if (pod.get("status") or {}).get("phase") == "Pending":
                for volume in (pod.get("spec") or {}).get("volumes") or []:
                    claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                    if claim:
                        claims.setdefault((str(meta(pod).get("namespace")), str(claim)), pod)
        calls.extend(
            self._claim(ns, name, pod) for (ns, name), pod in sorted(claims.items(), key=lambda c: c[0])
        )
        await asyncio.gather(*calls)

    async def _claim_in_scope(self, pvc: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
        """A PVC named by one of our Pods is a relation: shown if tracked, owned, listed, or made for
        our StatefulSet from its volumeClaimTemplates (<template>-<statefulset>-<ordinal>)."""
        name = str(meta(pvc).get("name", ""))
        if self.rules.readable("", "PersistentVolumeClaim", name, meta(pvc).get("namespace")):
            return True
        if await self.rules.related_in_scope(pvc, self.fetch):
            return True
        candidates = self.snap.owners + self.snap.problems + ([self.snap.target] if self.snap.target else [])
        ours = [
            o
            for o in candidates
            if o.get("kind") == "StatefulSet" and owned_by(pod, str(meta(o).get("uid", "")))
        ]
        return statefulset_claim(pvc, ours)

    async def _claim(self, namespace: str, name: str, pod: Mapping[str, Any]) -> None:
        # The claim's events are read alongside the claim (one stage), and kept only if it is ours.
        events_call = self._events_of("PersistentVolumeClaim", name, namespace)
        pvc = await self._try(
            f"PersistentVolumeClaim {namespace}/{name}",
            self.client.get("", "PersistentVolumeClaim", name, namespace),
        )
        if pvc is None:
            events_call.cancel()
            return
        pvc.setdefault("kind", "PersistentVolumeClaim")
        if not await self._claim_in_scope(pvc, pod):
            events_call.cancel()
            self.snap.note(
                f"PersistentVolumeClaim {namespace}/{name}, used by {label(pod)}, is not part of the "
                "Application (not shown)"
            )
            return
        self.snap.related.append(pvc)
        events = await asyncio.shield(events_call)
        self.snap.add_events(events or [])

    async def _namespace_events(self, namespace: str) -> None:
        """The namespace's events, one list started in stage 1 (reads.py). When the server cut it,
        the objects reached in that namespace have their events read one by one as well."""
        listed = await self.reads.listed("", "Event", namespace)
        # Keep only events about objects we reached from the Application.
        objects = self.snap.objects()
        if listed is not None:
            self.snap.add_events(e for e in listed.items if about_any(e, objects))
        if listed is None or not listed.cut:
            return
        mine = [o for o in objects if meta(o).get("namespace") == namespace][:MAX_EVENT_READS]
        found = await asyncio.gather(
            *(
                asyncio.shield(self._events_of(str(o.get("kind")), str(meta(o).get("name")), namespace))
                for o in mine
            )
        )
        for obj, events in zip(mine, found, strict=True):
            self.snap.add_events(e for e in events or [] if about_any(e, [obj]))

    def _logs(self, pod: Mapping[str, Any]) -> list[Awaitable[None]]:
        calls: list[Awaitable[None]] = []
        ns, name = str(meta(pod).get("namespace")), str(meta(pod).get("name"))
        for cs in container_statuses(pod):
            state = cs.get("state") or {}
            waiting = (state.get("waiting") or {}).get("reason")
            has_previous = (
                bool((cs.get("lastState") or {}).get("terminated")) or cs.get("restartCount", 0) > 0
            )
            started = "running" in state or "terminated" in state
            if cs.get("ready") and not has_previous:
                continue  # a healthy container's log is noise
            if started and waiting not in _NO_LOG_REASONS:
                calls.append(self._log(ns, name, str(cs.get("name")), previous=False))
            if has_previous:
                calls.append(self._log(ns, name, str(cs.get("name")), previous=True))
        return calls

    async def _log(self, namespace: str, pod: str, container: str, *, previous: bool) -> None:
        which = "previous log" if previous else "log"
        text = await self._try(
            f"{which} of Pod {namespace}/{pod} container {container}",
            self.reads.log(namespace, pod, container, previous=previous, tail_lines=self.log_lines),
        )
        if text:
            self.snap.logs.append(LogTail(namespace, pod, container, previous, text))
