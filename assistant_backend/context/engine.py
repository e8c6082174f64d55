"""The Kubernetes :class:`~.base.ContextSource`: Application -> scope -> gather -> findings -> budget.

Order matters for safety: the Application is read from the control plane and its project checked
first; the selected resource must pass the scope check before anything from the destination is
gathered; everything is redacted before it is rendered. Failures to read become notes in the bundle
(and in the text the model reads), so the answer still comes and says what it could not see.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from ..config import Settings
from ..identity import Caller
from .application import destination, read_application, resources
from .base import ContextBundle, ContextItem, ResourceRef
from .budget import fit
from .clusters import ClusterRegistry, Destination, load_local_credentials
from .findings import run_rules
from .gather import Gatherer, Snapshot, label, uid
from .kube import KubeClient, KubeError
from .relation_walker import RelationWalker
from .relations import (
    dedupe_logs,
    make_in_scope_by_relation,
    permitted_entries,
    read_project,
    refusal_notes,
)
from .render import assemble, build_sections
from .scope import check_scope, listed, refuse
from .tokens import estimate_tokens

log = logging.getLogger(__name__)


class KubeContext:
    def __init__(
        self,
        registry: ClusterRegistry,
        *,
        budget: int,
        log_lines: int,
        deadline_s: float,
        call_timeout_s: float,
    ) -> None:
        self.registry = registry
        self._budget = budget
        self._log_lines = log_lines
        self._deadline = deadline_s
        self._call_timeout = call_timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> KubeContext:
        """Blocking (reads kubeconfig): call once at start."""
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
        if local is None:
            log.warning("context: %s; answers will have no live Kubernetes state", note)
        else:
            log.info("context: Kubernetes API %s (credentials from %s)", local.server, access.source)
        registry = ClusterRegistry(
            local,
            note,
            argocd_namespace=settings.kubernetes.argocd_namespace,
            call_timeout_s=settings.context.call_timeout_s,
        )
        return cls(
            registry,
            budget=settings.context.token_budget,
            log_lines=settings.context.log_lines,
            deadline_s=settings.context.gather_deadline_s,
            call_timeout_s=settings.context.call_timeout_s,
        )

    async def aclose(self) -> None:
        await self.registry.aclose()

    async def build(self, caller: Caller, resource: ResourceRef | None, question: str) -> ContextBundle:
        if resource is not None and (resource.group, resource.kind, resource.name) == (
            "argoproj.io",
            "Application",
            caller.app_name,
        ):
            resource = None  # the application node selected in the UI is the Application itself
        snap = Snapshot()
        subject = str(resource) if resource else f"Application {caller.application}"
        control = self.registry.local
        gather_ms = 0.0
        if control is None:
            snap.note(self.registry.local_note or "no Kubernetes access configured")
        else:
            # issue 12: the AppProject (destinations) is read alongside the Application
            project_read = asyncio.ensure_future(
                asyncio.wait_for(
                    read_project(control, self.registry.argocd_namespace, caller.project), self._call_timeout
                )
            )
            try:
                snap.app = await asyncio.wait_for(read_application(control, caller), self._call_timeout)
            except (KubeError, TimeoutError) as exc:
                reason = exc.reason if isinstance(exc, KubeError) else "timed out"
                snap.note(
                    f"could not read Application {caller.application}: {reason}; "
                    "nothing was read from the destination cluster"
                )
            finally:
                if snap.app is None:
                    project_read.cancel()
        if snap.app is not None and control is not None:
            t0 = time.perf_counter()
            await asyncio.gather(
                self._from_destination(snap, caller, resource, question, project_read),
                self._application_events(control, snap, caller),
            )
            gather_ms = (time.perf_counter() - t0) * 1000
            dedupe_logs(snap)
            _canonical_order(snap)
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

    async def _from_destination(
        self,
        snap: Snapshot,
        caller: Caller,
        resource: ResourceRef | None,
        question: str = "",
        project_read: asyncio.Future[tuple[dict[str, Any] | None, str | None]] | None = None,
    ) -> None:
        assert snap.app is not None
        dest = await self.registry.destination(destination(snap.app))
        if dest.client is None:
            snap.note(f"{dest.note}; no live state from the destination cluster")
            if project_read is not None:
                project_read.cancel()
            return
        await self._gather(snap, dest, caller, resource, question, project_read)

    @staticmethod
    async def _with_namespace(app: dict[str, Any], client: KubeClient, ref: ResourceRef) -> ResourceRef:
        """A namespaced resource sent without a namespace: the one Argo CD lists, else the destination's."""
        if ref.namespace:
            return ref
        listed_ns = {
            str(r.get("namespace"))
            for r in resources(app)
            if (r.get("group") or "") == ref.group
            and r.get("kind") == ref.kind
            and r.get("name") == ref.name
            and r.get("namespace")
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
        question: str = "",
        project_read: asyncio.Future[tuple[dict[str, Any] | None, str | None]] | None = None,
    ) -> None:
        assert dest.client is not None and snap.app is not None
        client = dest.client
        # ---- issue 12 call site: relation walkers and the AppProject destination check ----
        app, control_ns = snap.app, self.registry.argocd_namespace
        project: dict[str, Any] | None = None
        if project_read is not None:
            try:
                project, project_note = await project_read
            except TimeoutError:
                project_note = f"could not read AppProject {caller.project} (timed out); its destinations were not checked"
            if project_note:
                snap.note(project_note)
        server = str(destination(app).get("server") or destination(app).get("name") or "")

        def readable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            allowed, refused = permitted_entries(entries, project, server)
            refusal_notes(snap, refused, caller.project)
            return [dict(e) for e in allowed]

        walker = RelationWalker(
            client,
            snap,
            make_in_scope_by_relation(app, control_ns, snap),
            log_lines=self._log_lines,
            question=question,
        )
        gatherer = Gatherer(client, snap, log_lines=self._log_lines, relations=walker, readable=readable)
        # ---- end of the issue 12 call site ----

        async def fetch(group: str, kind: str, name: str, namespace: str | None) -> dict[str, object] | None:
            return await client.get(group, kind, name, namespace)

        try:
            async with asyncio.timeout(self._deadline):
                if resource is None:
                    await gatherer.for_application(snap.app)
                    return
                resource = await self._with_namespace(snap.app, client, resource)
                if resource.kind == "Secret" and resource.group == "":
                    # Never read: the backend's RBAC has no secrets, and values must not reach the model.
                    if not listed(snap.app, "", "Secret", resource.name, resource.namespace):
                        raise refuse(resource, caller.application)
                    snap.note(
                        f"Secret {resource.namespace}/{resource.name}: contents are never read by design"
                    )
                    return
                try:
                    scoped = await check_scope(snap.app, resource, fetch, caller.application)
                except KubeError as exc:
                    snap.note(
                        f"could not verify that {resource} belongs to the Application ({exc.reason}); "
                        "nothing was gathered from the destination cluster"
                    )
                    return
                snap.owners = list(scoped.owners)
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


def _canonical_order(snap: Snapshot) -> None:
    """Concurrent reads append in whatever order they finish. Sort what they appended, so the same
    cluster state renders the same text and fingerprint; otherwise every follow-up about an
    Application resent its whole context (bench/tokens.py: 4,000 tokens a turn at 100 resources)."""
    for objects in (snap.problems, snap.related, snap.pods):
        objects.sort(key=label)
    snap.logs.sort(key=lambda tail: tail.label)
    snap.events.sort(key=lambda event: (str(event.get("lastTimestamp") or ""), uid(event)))
