"""The Kubernetes :class:`~.base.ContextSource`: Application -> scope -> gather -> findings -> budget.

Order matters for safety: the Application is read from the control plane and its project checked
first, with its AppProject (permitted destinations) and argocd-cm (tracking method); the selected
resource must pass the scope check (:mod:`.scope`) before anything from the destination is gathered;
everything is redacted before it is rendered. Failures to read become notes in the bundle (and in
the text the model reads), so the answer still comes and says what it could not see.

Attachments (what the panel read from Argo CD's API under the user's session, :mod:`.attachments`)
pass the same scope before they are used: managed resources and revisions against the Application,
attached Pod logs through the scope check on the destination. Pod logs follow ``context.pod_logs``:
under ``argocd`` (the default) only attached logs are used, so Argo CD's ``logs, get`` decides who
reads them; under ``backend`` the backend reads them itself; ``off`` uses none.

A repeat question about an Application starts, with the Application's own round trip, the reads
the last one made in its destination (reads.py, :class:`~.reads.Footprints`: where, never what);
they are kept only when the fresh Application and AppProject name and permit their cluster and
namespace, and answer only what the gather asks for after its own scope checks, so a repeat
question costs one dependent round trip less and a moved Application reads nothing from where it
was. A first question (or one more than ``FOOTPRINT_TTL_S`` later) waits for the Application.

The Application, its AppProject and argocd-cm come from the control-plane cache (control_cache.py,
list+watch) while it is synced and watching, else from GETs as before: the same dicts, so nothing
after this read can tell. That is as fresh as what Argo CD authorised: the proxy extension itself
checked the header's project against the Application in its own informer cache, a watch of the same
objects (docs/upstream-facts.md, "Argo CD proxy extension"); our watch lags the apiserver as little,
and whatever the cache does not hold, or holds in another project, is decided by the GET, so a
deleted Application is a 404 and a moved one a refusal as without it. With the cache a first
question is its two destination stages, a repeat one the stage its footprint did not start.

Rendering (redaction, the diff, findings text, the budget) is CPU work on text from the cluster: it
runs in a worker thread so one large context never stalls the other streams of the replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import Any

from ..config import ContextConfig, Settings
from ..errors import ApiError
from ..identity import Caller
from ..wire import Attachment
from .application import destination
from .attachments import Attached, AttachedState, check_listed, check_logs
from .base import ContextBundle, ContextItem, ResourceRef
from .budget import fit
from .clusters import ClusterRegistry, Destination, load_local_credentials
from .control_cache import CLIENT_NAME as CONTROL_CACHE_CLIENT
from .control_cache import ControlCache, ControlPlane
from .diff import diff_resource
from .findings import run_rules
from .gather import Gatherer
from .kube import KubeClient, KubeError
from .objects import Snapshot, label, listed, missing, pod_unhealthy, uid
from .reads import (
    MAX_FOOTPRINT_READS,
    EarlyReads,
    Footprint,
    FootprintKey,
    Footprints,
    Reads,
    named_namespaces,
)
from .redact import Redactor
from .relation_walker import RelationWalker
from .relations import dedupe_logs, make_in_scope_by_relation
from .render import assemble, build_sections
from .scope import Fetch, Permissions, ScopeRules, Tracking, check_scope, refuse
from .tokens import estimate_tokens

log = logging.getLogger(__name__)


class KubeContext:
    def __init__(
        self,
        registry: ClusterRegistry,
        config: ContextConfig,
        *,
        argocd_namespace: str,
        control_cache: ControlCache | None = None,
    ) -> None:
        self.registry = registry
        self._control_plane = argocd_namespace
        # Applications, AppProjects and argocd-cm by list+watch (control_cache.py), on a client of its
        # own: the reads' client never waits behind a watch, and a watch has its own read timeout.
        self.control_cache = control_cache
        self._pod_logs = config.pod_logs
        self._budget = config.token_budget
        self._log_lines = config.log_lines
        self._deadline = config.gather_deadline_s
        self._call_timeout = config.call_timeout_s
        # Where each Application's last question read (per process, bounded, short-lived).
        self.footprints = Footprints()

    @classmethod
    def from_settings(cls, settings: Settings, *, control_cache: bool = True) -> KubeContext:
        """Blocking (reads kubeconfig): call once at start. ``control_cache=False``: every question
        GETs its Application, AppProject and argocd-cm (tests of that path, the benchmark's baseline)."""
        access = load_local_credentials(settings.kubernetes.kubeconfig, settings.kubernetes.context)
        local = None
        note = access.note
        if access.credentials is not None:
            try:
                local = KubeClient(
                    access.credentials, call_timeout_s=settings.context.call_timeout_s, name="local"
                )
            except (OSError, ValueError) as exc:
                note = f"Kubernetes credentials from {access.source} are unusable ({type(exc).__name__})"
        cache = None
        if local is None:
            log.warning("context: %s; answers will have no live Kubernetes state", note)
        else:
            log.info("context: Kubernetes API %s (credentials from %s)", local.server, access.source)
        if local is not None and control_cache:
            # HTTP/1.1, a connection per watch: httpcore's HTTP/2 starves a new stream's headers
            # while other streams on the connection wait, quiet, for data (control_cache.py).
            watches = KubeClient(
                local.credentials,
                call_timeout_s=settings.context.call_timeout_s,
                name=CONTROL_CACHE_CLIENT,
                http2=False,
            )
            cache = ControlCache(
                watches, settings.kubernetes.argocd_namespace, call_timeout_s=settings.context.call_timeout_s
            )
        registry = ClusterRegistry(
            local,
            note,
            argocd_namespace=settings.kubernetes.argocd_namespace,
            call_timeout_s=settings.context.call_timeout_s,
        )
        return cls(
            registry,
            settings.context,
            argocd_namespace=settings.kubernetes.argocd_namespace,
            control_cache=cache,
        )

    def cache_serving(self) -> dict[str, bool]:
        """Per kind, whether the control-plane cache serves it now (empty: no cache)."""
        return self.control_cache.serving() if self.control_cache is not None else {}

    def start(self) -> None:
        """Start the control-plane cache on the running loop (idempotent; the first build does it
        when nothing called this at start)."""
        if self.control_cache is not None:
            self.control_cache.start()

    async def aclose(self) -> None:
        if self.control_cache is not None:
            await self.control_cache.aclose()
        await self.registry.aclose()

    async def build(
        self,
        caller: Caller,
        resource: ResourceRef | None,
        question: str,
        attachments: Sequence[Attachment] = (),
    ) -> ContextBundle:
        if resource is not None and (resource.group, resource.kind, resource.name) == (
            "argoproj.io",
            "Application",
            caller.app_name,
        ):
            resource = None  # the application node selected in the UI is the Application itself
        self.start()
        snap = Snapshot()
        subject = str(resource) if resource else f"Application {caller.application}"
        key: FootprintKey = (self._control_plane, caller.app_namespace, caller.app_name, caller.project)
        early = self._start_early(key)  # a repeat question: its reads go out with the Application's
        try:
            gather_ms, attached = await self._gather_all(
                snap, caller, resource, question, attachments, key, early
            )
        except ApiError:
            self.footprints.forget(key)  # absent, in another project, or a refused selection
            raise
        finally:
            _drop_early(early)  # whatever was not adopted (or not reached) ends unread
        # CPU-bound work on cluster text: off the event loop (every pattern is linear, lines capped).
        return await asyncio.to_thread(
            self._render, snap, caller, subject, question, gather_ms, attached.states
        )

    async def _gather_all(
        self,
        snap: Snapshot,
        caller: Caller,
        resource: ResourceRef | None,
        question: str,
        attachments: Sequence[Attachment],
        key: FootprintKey,
        early: asyncio.Task[EarlyReads | None] | None,
    ) -> tuple[float, Attached]:
        """The Application (with its AppProject and argocd-cm), then what it scopes: (gather ms, attached)."""
        control = self.registry.local
        if control is None:
            snap.note(self.registry.local_note or "no Kubernetes access configured")
            return 0.0, Attached()
        reads = ControlPlane(control, self._control_plane, self.control_cache)
        # The Application, its AppProject and argocd-cm: from the control-plane cache while it is
        # synced and watching, else in one round trip of GETs. The project named by the header is the
        # only one the Application may have (ControlPlane.application checks it).
        app, project, argocd_cm = await asyncio.gather(
            self._control_read(snap, f"Application {caller.application}", reads.application(caller)),
            self._control_read(snap, f"AppProject {caller.project}", reads.project(caller.project)),
            self._control_read(snap, "argocd-cm", reads.argocd_cm()),
        )
        snap.app = app
        if app is None:  # the only note that matters then
            snap.notes = [
                f"{n}; nothing was read from the destination cluster"
                for n in snap.notes
                if n.startswith("could not read Application")
            ]
            if attachments:
                snap.note("the attachments from Argo CD were not used: the Application could not be read")
            return 0.0, Attached()
        t0 = time.perf_counter()
        rules = self._scope_rules(snap, caller, project, argocd_cm)
        attached = check_listed(rules, attachments, caller.application)  # 403 before any read
        snap.revisions = attached.revisions
        for note in attached.notes:
            snap.note(note)
        await asyncio.gather(
            self._from_destination(snap, caller, resource, rules, attached, question, key, early),
            self._application_events(control, snap, caller),
        )
        gather_ms = (time.perf_counter() - t0) * 1000
        dedupe_logs(snap)
        self._log_policy_note(snap, attached)
        _canonical_order(snap)
        return gather_ms, attached

    def _start_early(self, key: FootprintKey) -> asyncio.Task[EarlyReads | None] | None:
        """Start the reads of this Application's last footprint in its last destination cluster."""
        footprint = self.footprints.recall(key)
        if footprint is None:
            return None

        async def start(footprint: Footprint) -> EarlyReads | None:
            dest = await self.registry.destination({"server": footprint.server, "name": footprint.name})
            if dest.client is None:
                return None
            return EarlyReads(dest.client, footprint, log_lines=self._log_lines)

        task = asyncio.ensure_future(start(footprint))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved, even if unawaited
        return task

    def _log_policy_note(self, snap: Snapshot, attached: Attached) -> None:
        """Tell the model why there are no logs, when it would otherwise wonder."""
        if self._pod_logs == "backend" or not any(pod_unhealthy(p) for p in snap.pods):
            return
        if self._pod_logs == "off":
            snap.note("pod logs are not used (context.pod_logs: off)")
        elif not any(t.source == "argocd" for t in snap.logs) and not attached.logs:
            snap.note(
                "pod logs are not read by the backend (context.pod_logs: argocd) and the panel attached "
                "none (the user's Argo CD role may lack `logs, get`)"
            )

    def _render(
        self,
        snap: Snapshot,
        caller: Caller,
        subject: str,
        question: str,
        gather_ms: float,
        states: Sequence[AttachedState] = (),
    ) -> ContextBundle:
        for state in states:
            # Redacted like everything else, the same way on both sides, before anything is compared.
            red = Redactor()
            target = red.obj(state.target) if state.target is not None else None
            live = red.obj(state.live) if state.live is not None else None
            diff = diff_resource(str(state.ref), state.ref.kind, live, target, redactions=red.count)
            if diff.state != "same":
                snap.diffs.append(diff)
        findings = run_rules(snap)
        fired = tuple(f.rule for f in findings)
        header = (
            f"# Kubernetes context for Argo CD Application {caller.application} (project {caller.project})\n"
            f"The question is about: {subject}\n"
            "Secret values and credentials are never read; [REDACTED] marks masked text."
        )
        sections = build_sections(snap, findings, subject)
        reserved = estimate_tokens(header) + 20 + sum(estimate_tokens(n) + 2 for n in snap.notes)
        fitted = fit(sections, self._budget, reserved=reserved, question=question)
        text, items = assemble(header, fitted, snap.notes)
        if not items:
            items = (ContextItem("note", subject, estimate_tokens(text)),)
        log.debug(
            "context for %s (%s): %d items, %d tokens, %d notes, findings %s, gather %.0f ms",
            caller.application,
            subject,
            len(items),
            sum(i.tokens for i in items),
            len(snap.notes),
            ",".join(fired) or "-",
            gather_ms,
        )
        return ContextBundle(
            text=text,
            items=items,
            budget=self._budget,
            notes=tuple(snap.notes),
            findings=fired,
            gather_ms=gather_ms if snap.app is not None else None,
        )

    async def _control_read(self, snap: Snapshot, what: str, call: Awaitable[dict[str, Any] | None]) -> Any:
        """One control-plane read with the call timeout; a failure is a note (ApiErrors propagate)."""
        try:
            return await asyncio.wait_for(call, self._call_timeout)
        except (KubeError, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, KubeError) else "timed out"
            snap.note(f"could not read {what}: {reason}")
            return None

    def _scope_rules(
        self,
        snap: Snapshot,
        caller: Caller,
        project: dict[str, Any] | None,
        argocd_cm: dict[str, Any] | None,
    ) -> ScopeRules:
        """The AppProject's permitted destinations and argocd-cm's tracking method."""
        assert snap.app is not None
        if project is None:
            own = destination(snap.app).get("namespace") or "-"
            snap.note(
                f"AppProject {caller.project} could not be read: only the destination namespace {own} is read"
            )
        return ScopeRules(
            snap.app,
            Permissions.from_project(project, snap.app),
            Tracking.for_application(caller.app_namespace, caller.app_name, self._control_plane, argocd_cm),
        )

    async def _from_destination(
        self,
        snap: Snapshot,
        caller: Caller,
        resource: ResourceRef | None,
        rules: ScopeRules,
        attached: Attached,
        question: str,
        key: FootprintKey,
        early: asyncio.Task[EarlyReads | None] | None,
    ) -> None:
        assert snap.app is not None
        spec = destination(snap.app)
        dest = await self.registry.destination(spec)
        if dest.client is None:
            self.footprints.forget(key)
            snap.note(f"{dest.note}; no live state from the destination cluster")
            if attached.logs and self._pod_logs != "off":
                snap.note(
                    "the attached Pod logs are not used: without access to the destination cluster "
                    "the backend cannot verify that the Pods belong to the Application"
                )
            return
        # One list per namespace and kind, one GET per object, per question (reads.py).
        reads = Reads(dest.client, rules, snap.note)
        named = named_namespaces(rules)
        try:
            # Early reads pass the fresh Application's and AppProject's namespaces or end unread.
            reads.adopt(await _early_reads(early), named)
            await self._gather(snap, dest, caller, resource, rules, reads, question)
            await self._attached_logs(snap, caller, rules, attached, reads.fetch)
            lists, gets = reads.footprint(named)
            logs = reads.footprint_logs(named, MAX_FOOTPRINT_READS - len(lists) - len(gets))
            events = reads.footprint_events(named, MAX_FOOTPRINT_READS - len(lists) - len(gets) - len(logs))
            server, name = str(spec.get("server") or ""), str(spec.get("name") or "")
            self.footprints.remember(key, Footprint(server, name, lists, gets, logs, events))
        finally:
            reads.close()

    async def _attached_logs(
        self, snap: Snapshot, caller: Caller, rules: ScopeRules, attached: Attached, fetch: Fetch
    ) -> None:
        """The panel's logs (read under the user's `logs, get`), for Pods in scope."""
        if not attached.logs:
            return
        if self._pod_logs == "off":
            snap.note("the attached Pod logs are not used (context.pod_logs: off)")
            return
        try:
            async with asyncio.timeout(self._deadline):
                tails, notes = await check_logs(
                    rules, attached.logs, fetch, caller.application, max_lines=self._log_lines
                )
        except TimeoutError:
            snap.note("the attached Pod logs are not used: their Pods could not be verified in time")
            return
        for note in notes:
            snap.note(note)
        # Under `backend` the backend's own read of the same container wins (it is the same log).
        read = {(t.namespace, t.pod, t.container, t.previous) for t in snap.logs}
        snap.logs.extend(t for t in tails if (t.namespace, t.pod, t.container, t.previous) not in read)

    @staticmethod
    async def _with_namespace(app: dict[str, Any], client: KubeClient, ref: ResourceRef) -> ResourceRef:
        """A namespaced resource sent without a namespace: the one Argo CD lists, else the destination's."""
        if ref.namespace:
            return ref
        listed_ns = {
            str(e["namespace"]) for e in listed(app, ref.group, ref.kind, ref.name) if e.get("namespace")
        }
        if len(listed_ns) == 1:
            return replace(ref, namespace=listed_ns.pop())
        try:
            served = await client.resource(ref.group, ref.kind, ref.version)
        except KubeError:
            return ref
        if served is not None and served.namespaced:
            return replace(ref, namespace=destination(app).get("namespace") or None)
        return ref

    async def _application_events(self, control: KubeClient, snap: Snapshot, caller: Caller) -> None:
        """Argo CD records sync and health transitions as Events on the Application (control plane)."""
        selector = f"involvedObject.name={caller.app_name},involvedObject.kind=Application"
        try:
            events = await asyncio.wait_for(
                control.list("", "Event", caller.app_namespace, field_selector=selector, limit=100),
                self._call_timeout,
            )
        except (KubeError, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, KubeError) else "timed out"
            snap.note(f"could not read the Application's events: {reason}")
            return
        snap.add_events(events or [])

    async def _gather(
        self,
        snap: Snapshot,
        dest: Destination,
        caller: Caller,
        resource: ResourceRef | None,
        rules: ScopeRules,
        reads: Reads,
        question: str = "",
    ) -> None:
        assert dest.client is not None and snap.app is not None
        client = dest.client
        fetch = reads.fetch
        read_logs = self._pod_logs == "backend"
        # Relation walkers (relations.py): what sits one or two hops away, under the same scope rules.
        walker = RelationWalker(
            client,
            snap,
            make_in_scope_by_relation(rules, snap),
            log_lines=self._log_lines,
            question=question,
            read_logs=read_logs,
            reads=reads,
        )
        gatherer = Gatherer(
            client,
            snap,
            rules,
            fetch,
            log_lines=self._log_lines,
            read_logs=read_logs,
            relations=walker,
            reads=reads,
        )

        try:
            async with asyncio.timeout(self._deadline):
                if resource is None:
                    await gatherer.for_application(snap.app)
                    return
                resource = await self._with_namespace(snap.app, client, resource)
                if resource.kind == "Secret" and resource.group == "":
                    # Never read: the backend's RBAC has no secrets, and values must not reach the model.
                    if rules.entry("", "Secret", resource.name, resource.namespace) is None:
                        raise refuse(resource, caller.application)
                    snap.note(
                        f"Secret {resource.namespace}/{resource.name}: contents are never read by design"
                    )
                    return
                # Stage 1 goes out with the scope check's own read: for a readable listed entry
                # (scope decided without a read) its events and namespace lists; for anything else
                # only the owners its name suggests, so the owner chain is not one stage per hop.
                entry = rules.entry(resource.group, resource.kind, resource.name, resource.namespace)
                if entry is not None and rules.unreadable_reason(entry) is None:
                    gatherer.start(resource.group, resource.kind, resource.name, resource.namespace)
                elif entry is None:
                    reads.prefetch_owners(resource.group, resource.kind, resource.name, resource.namespace)
                try:
                    scoped = await check_scope(rules, resource, fetch, caller.application)
                except KubeError as exc:
                    snap.note(
                        f"could not verify that {resource} belongs to the Application ({exc.reason}); "
                        "nothing was gathered from the destination cluster"
                    )
                    return
                snap.owners = list(scoped.owners)
                if scoped.reason is not None:
                    snap.target_missing = True
                    entry = rules.entry(resource.group, resource.kind, resource.name, resource.namespace)
                    if entry is not None and missing(entry):
                        await gatherer.note_missing(
                            resource.group, resource.kind, str(resource), resource.version
                        )
                    else:
                        snap.note(f"{resource}: not read, {scoped.reason}")
                    return
                if scoped.obj is None:
                    snap.target_missing = True
                    await gatherer.note_missing(
                        resource.group, resource.kind, str(resource), resource.version
                    )
                    return
                snap.target = scoped.obj
                await gatherer.for_resource(scoped.obj)
        except TimeoutError:
            if resource is not None and snap.target is None and not snap.target_missing:
                snap.note(
                    f"could not verify that {resource} belongs to the Application within "
                    f"{self._deadline:g}s; nothing was gathered from the destination cluster"
                )
            else:
                snap.note(
                    f"gathering stopped at the {self._deadline:g}s deadline; some objects were not read"
                )


async def _early_reads(early: asyncio.Task[EarlyReads | None] | None) -> EarlyReads | None:
    if early is None:
        return None
    try:
        return await asyncio.shield(early)
    except Exception:  # only an optimisation: the gather reads everything itself
        return None


def _drop_early(early: asyncio.Task[EarlyReads | None] | None) -> None:
    """Cancel the early reads nobody adopted (adopted ones are Reads.close()'s)."""
    if early is None:
        return
    if not early.done():
        early.cancel()
    elif not early.cancelled() and early.exception() is None and (started := early.result()) is not None:
        started.cancel()


def _canonical_order(snap: Snapshot) -> None:
    """Concurrent reads append in whatever order they finish. Sort what they appended, so the same
    cluster state renders the same text and fingerprint; otherwise every follow-up about an
    Application resent its whole context (bench/tokens.py: 4,000 tokens a turn at 100 resources)."""
    for objects in (snap.problems, snap.related, snap.pods):
        objects.sort(key=label)
    snap.logs.sort(key=lambda tail: tail.label)
    snap.events.sort(key=lambda event: (str(event.get("lastTimestamp") or ""), uid(event)))
