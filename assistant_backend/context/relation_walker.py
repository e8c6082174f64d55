"""The relation walker: follows, from what the gatherer holds, the relations ``relations.py``
describes, each with a small budget, concurrently, inside the gatherer's deadline.

Two stages around the gatherer's second stage (events and logs): :meth:`RelationWalker.first`
adds Pods (Ingress -> Service -> Pods, claims -> the Pods that mount them, hook Jobs -> Pods) and drops
Pods a selector matched in another Application; :meth:`RelationWalker.late` only adds facts (keys,
annotations, volumes, nodes, HPA targets, child Applications, the logs relations point at) and runs
alongside the second stage; :meth:`RelationWalker.merge` adds what ``late`` reached once both are done,
so the same cluster state renders the same context. Scope decisions go through the
``in_scope_by_relation`` predicate the caller supplies (relations.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any

from .. import linear
from .application import resource_label, resources
from .kube import KubeClient, KubeError
from .objects import (
    LogTail,
    Snapshot,
    api_group,
    container_statuses,
    label,
    labels_selector,
    listed,
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
from .relations import (
    InScope,
    facts_of,
    labels_text,
    nearest_pods,
    pod_references,
    port_lines,
    slim_node,
    slim_volume,
)

MAX_NEAREST_PODS = 3  # a selector that matches nothing: the closest in-scope Pods
MAX_REFERENCES = 8  # ConfigMaps/PVCs/ServiceAccounts read per question
MAX_HOOKS = 4  # hook / failed sync-result resources followed
MAX_CHILD_APPS = 10
MAX_EXTRA_LOGS = 3  # logs of running containers that a relation points at
MAX_NAMESPACE_PODS = 200  # one list of Pods per namespace, for selector/claim relations


_LOG_QUESTION = linear.compile(
    r"(?i)\b(logs?|behaviou?r|behaving|doing|does nothing|output|print|slow|hang|stuck|forbidden|permission|rbac)\b"
)


class RelationWalker:
    """Walks the relations from what the gatherer already holds; call :meth:`walk` once, after the
    owners/children stage and before events and logs are read."""

    def __init__(
        self,
        client: KubeClient,
        snap: Snapshot,
        in_scope_by_relation: InScope,
        *,
        log_lines: int,
        read_logs: bool = True,
        question: str = "",
        reads: Reads | None = None,
    ) -> None:
        self.client = client
        self.reads = reads  # the question's shared lists and GETs (reads.py): stage 1, not one per hop
        self.snap = snap
        self.in_scope = in_scope_by_relation
        self.log_lines = log_lines
        self.read_logs = read_logs  # context.pod_logs: backend (else only the panel's attached logs)
        self.question = question
        self.facts = facts_of(snap)
        self._pods_by_ns: dict[str, asyncio.Task[list[dict[str, Any]]]] = {}
        self._extra_logs: list[tuple[str, str, str, bool]] = []
        self._buffering = False
        self._held: list[dict[str, Any]] = []
        self._owners: dict[tuple[str, str, str, str | None], asyncio.Future[Any]] = {}

    async def _try(self, what: str, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except KubeError as exc:
            self.snap.note(f"could not read {what}: {exc.reason}")
            return None

    async def _get(
        self, group: str, kind: str, name: str, namespace: str | None, *, absent: str
    ) -> dict[str, Any] | None:
        """One object a relation points at; when the apiserver says it is not there (404), the fact
        ``absent`` says so. A read that failed (forbidden, timeout) is a note, never "absent": the
        model would otherwise blame a missing object that may well exist."""
        where = f"{namespace}/" if namespace else ""
        # Through the question's reads (memoized; a repeat question's may have started early).
        read = self.reads.fetch if self.reads is not None else self.client.get
        try:
            found = await read(group, kind, name, namespace)
        except KubeError as exc:
            self.snap.note(f"could not read {kind} {where}{name}: {exc.reason}")
            return None
        if found is None:
            self.facts.add(absent)
            return None
        return dict(found)

    async def namespace_pods(self, namespace: str) -> list[dict[str, Any]]:
        """One list of the namespace's Pods per question, shared by every walker."""
        if self.reads is not None:
            return await self.reads.pods(namespace)
        if namespace not in self._pods_by_ns:

            async def load() -> list[dict[str, Any]]:
                pods = await self._try(
                    f"Pods in namespace {namespace}",
                    self.client.list("", "Pod", namespace, limit=MAX_NAMESPACE_PODS),
                )
                return list(pods or [])

            self._pods_by_ns[namespace] = asyncio.ensure_future(load())
        return await self._pods_by_ns[namespace]

    def _add_related(self, obj: dict[str, Any]) -> None:
        if self._buffering:
            if uid(obj) not in {uid(o) for o in self._held}:
                self._held.append(obj)
        elif uid(obj) not in {uid(o) for o in self.snap.objects()}:
            self.snap.related.append(obj)

    def _add_pod(self, pod: dict[str, Any]) -> None:
        if uid(pod) not in {uid(p) for p in self.snap.pods}:
            self.snap.pods.append(pod)

    async def first(self) -> None:
        """The relations that add Pods (their events and logs are read by the gatherer's second
        stage, which runs after this): Ingress -> Service -> Pods, selectors, claims -> the Pods
        that mount them, sync-result hooks -> Jobs -> Pods. No I/O when none of these kinds is there."""
        await self._prune_unscoped_pods()
        calls: list[Awaitable[None]] = []
        for obj in self.snap.objects():
            kind = obj.get("kind")
            if kind == "Ingress":
                calls.append(self.ingress(obj))
            elif kind == "Service":
                calls.append(self.service(obj))
            elif kind == "PersistentVolumeClaim":
                calls.append(
                    self._claim_pods(obj, str(meta(obj).get("namespace") or ""), str(meta(obj).get("name")))
                )
            elif kind == "Application" and obj is not self.snap.app:
                self.facts.children.append(obj)
        if self.snap.app is not None:
            calls.append(self.sync_results(self.snap.app))
        await asyncio.gather(*calls)
        for obj in self.snap.objects():  # no I/O: they only choose logs to read later
            if obj.get("kind") in ("Deployment", "StatefulSet"):
                await self.previous_revision(obj)
            elif obj.get("kind") == "CronJob":
                await self.cronjob(obj)

    async def late(self) -> None:
        """The relations that only add facts, run alongside the gatherer's second stage: references
        (ConfigMap keys, ServiceAccount annotations, PVCs -> volume and StorageClass), Nodes, the HPA
        target, child Applications, and the logs relations point at. Objects they reach are held
        back until :meth:`merge`, so the second stage's event filter sees the same objects every run."""
        self._buffering = True
        calls: list[Awaitable[None]] = [self.references(), self.nodes(), self.logs()]
        for obj in self.snap.objects():
            if obj.get("kind") == "HorizontalPodAutoscaler":
                calls.append(self.hpa(obj))
            elif obj.get("kind") == "PersistentVolumeClaim":
                calls.append(self.claim(obj, pods=False))
        if self.snap.app is not None:
            calls.append(self.missing_kinds(self.snap.app))
            calls.append(self.child_applications(self.snap.app))
        await asyncio.gather(*calls)
        claims = [
            o
            for o in self._held
            if o.get("kind") == "PersistentVolumeClaim" and uid(o) not in self.facts.volumes
        ]
        await asyncio.gather(*(self.claim(c, pods=False) for c in claims))

    def merge(self) -> None:
        """Add what :meth:`late` reached, once, and name what was left out of scope."""
        self._buffering = False
        for obj in self._held:
            self._add_related(obj)
        self._held.clear()
        self._summarise_out_of_scope()

    async def walk(self) -> None:
        """All stages in order (for callers without a second stage of their own)."""
        await self.first()
        await self.late()
        self.merge()

    # ---- network ----

    async def ingress(self, ing: Mapping[str, Any]) -> None:
        ns = meta(ing).get("namespace")
        names: list[str] = []
        spec = ing.get("spec") or {}
        default = ((spec.get("defaultBackend") or spec.get("backend") or {}).get("service") or {}).get("name")
        if default:
            names.append(str(default))
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                svc = ((path.get("backend") or {}).get("service") or {}).get("name") or (
                    path.get("backend") or {}
                ).get("serviceName")
                if svc:
                    names.append(str(svc))
        for name in list(dict.fromkeys(names))[:MAX_REFERENCES]:
            svc = await self._try(f"Service {ns}/{name}", self.client.get("", "Service", name, ns))
            if svc is None:
                self.facts.missing_refs.append(("Service", str(ns), name, label(ing)))
                self.facts.add(f"{label(ing)} routes to Service {ns}/{name}, which does not exist")
                continue
            svc.setdefault("kind", "Service")
            svc.setdefault("apiVersion", "v1")
            if not self.in_scope(svc):
                self.facts.skipped("Ingress backend", svc)
                continue
            self._add_related(svc)
            self.facts.add(f"{label(ing)} routes to {label(svc)}")
            endpoints = await self._try(f"Endpoints {ns}/{name}", self.client.get("", "Endpoints", name, ns))
            if endpoints is not None:
                endpoints.setdefault("kind", "Endpoints")
                self._add_related(endpoints)
            await self.service(svc)

    async def _relatable(self, pod: Mapping[str, Any]) -> bool:
        """The selected object, in scope by the predicate, or owned (through ReplicaSet/Job...) by an
        object the predicate accepts."""
        if self.snap.target is not None and uid(pod) == uid(self.snap.target):
            return True
        return self.in_scope(pod) or await self._owned_in_scope(pod)

    async def _prune_unscoped_pods(self) -> None:
        """A label selector (a Service's) also matches other Applications' Pods in a shared
        namespace: those are named and counted, never shown, and their logs and events are not read."""
        pods = list(self.snap.pods)
        keep = await asyncio.gather(*(self._relatable(p) for p in pods))
        for pod, ok in zip(pods, keep, strict=True):
            if not ok:
                self.snap.pods.remove(pod)
                self.facts.skipped("Service selector", pod)

    async def service(self, svc: Mapping[str, Any]) -> None:
        selector = (svc.get("spec") or {}).get("selector") or {}
        ns = str(meta(svc).get("namespace") or "")
        if not selector or not ns:
            return
        pods = await self.namespace_pods(ns)
        matching = [p for p in pods if selector_matches(selector, meta(p).get("labels") or {})]
        shown = []
        for pod in matching[:MAX_REFERENCES]:
            if await self._relatable(pod):
                self._add_pod(pod)
                shown.append(pod)
            else:
                self.facts.skipped("Service selector", pod)
        if not matching:
            near: list[dict[str, Any]] = []
            for pod in nearest_pods(selector, pods, MAX_NEAREST_PODS * 3):
                if len(near) < MAX_NEAREST_PODS and await self._relatable(pod):
                    near.append(pod)
            self.facts.nearest[uid(svc)] = near
            sel = labels_selector(selector)
            if near:
                self.facts.add(
                    f"{label(svc)} selector {sel} matches no Pod; nearest Pods of this Application: "
                    + "; ".join(f"{label(p)} labels {labels_text(meta(p).get('labels') or {})}" for p in near)
                )
            else:
                self.facts.add(f"{label(svc)} selector {sel} matches no Pod of this Application")
        for line in port_lines(svc, shown):
            self.facts.add(line)

    # ---- references ----

    async def references(self) -> None:
        seen: set[tuple[str, str, str]] = set()
        calls: list[Awaitable[None]] = []
        for pod in list(self.snap.pods):
            ns = str(meta(pod).get("namespace") or "")
            for kind, name, key, optional in pod_references(pod):
                ident = (kind, ns, name)
                if kind == "Secret":
                    # Never read: name the Secret and the key the Pod asks for.
                    lists_it = any(
                        (e.get("namespace") or "") == ns
                        for e in listed(self.snap.app or {}, "", "Secret", name)
                    )
                    self.facts.add(
                        f"{label(pod)} references Secret {ns}/{name}"
                        + (f" key {key}" if key else "")
                        + (" (optional)" if optional else "")
                        + ("; the Application lists it" if lists_it else "; not listed by the Application")
                        + " (Secrets are never read)"
                    )
                    continue
                if ident in seen or ident in self.facts.config_keys or len(seen) >= MAX_REFERENCES:
                    continue
                if kind == "PersistentVolumeClaim" and any(
                    o.get("kind") == kind and meta(o).get("name") == name and meta(o).get("namespace") == ns
                    for o in self.snap.related
                ):
                    continue
                seen.add(ident)
                calls.append(self._reference(pod, kind, ns, name, key, optional))
        await asyncio.gather(*calls)

    async def _reference(
        self, pod: Mapping[str, Any], kind: str, ns: str, name: str, key: str | None, optional: bool = False
    ) -> None:
        obj = await self._try(f"{kind} {ns}/{name}", self.client.get("", kind, name, ns))
        if obj is None:
            if optional:  # the Pod starts without it: not a cause
                self.facts.add(f"{label(pod)} references optional {kind} {ns}/{name}, which does not exist")
                return
            self.facts.missing_refs.append((kind, ns, name, label(pod)))
            self.facts.add(f"{label(pod)} references {kind} {ns}/{name}, which does not exist")
            return
        obj.setdefault("kind", kind)
        obj.setdefault("apiVersion", "v1")
        if not self.in_scope(obj):
            self.facts.skipped(f"{kind} referenced by a Pod", obj)
            return
        if kind == "ConfigMap":
            keys = sorted(list((obj.get("data") or {}).keys()) + list((obj.get("binaryData") or {}).keys()))
            self.facts.config_keys[(kind, ns, name)] = keys
            wanted = f"; the Pod asks for key {key}" + ("" if key in keys else " (absent)") if key else ""
            self.facts.add(f"ConfigMap {ns}/{name} has keys: {', '.join(keys) or 'none'}{wanted}")
        elif kind == "ServiceAccount":
            annotations = {
                k: v
                for k, v in (meta(obj).get("annotations") or {}).items()
                if k != "kubectl.kubernetes.io/last-applied-configuration"
            }
            self.facts.add(
                f"{label(pod)} runs as ServiceAccount {ns}/{name}"
                + (
                    f" annotations: {', '.join(f'{k}={v}' for k, v in sorted(annotations.items()))}"
                    if annotations
                    else " (no annotations)"
                )
            )
        elif kind == "PersistentVolumeClaim":
            self._add_related(obj)

    # ---- storage ----

    async def claim(self, pvc: Mapping[str, Any], *, pods: bool = True) -> None:
        ns = str(meta(pvc).get("namespace") or "")
        name = str(meta(pvc).get("name") or "")
        spec = pvc.get("spec") or {}
        calls: list[Awaitable[None]] = []
        if pods:
            calls.append(self._claim_pods(pvc, ns, name))
        if spec.get("volumeName"):
            calls.append(self._volume(pvc, str(spec["volumeName"])))
        if spec.get("storageClassName"):
            calls.append(self._storage_class(pvc, str(spec["storageClassName"])))
        modes = ", ".join(spec.get("accessModes") or []) or "?"
        self.facts.add(
            f"{label(pvc)} access modes {modes}, storageClass {spec.get('storageClassName') or 'default'}"
        )
        await asyncio.gather(*calls)

    async def _claim_pods(self, pvc: Mapping[str, Any], ns: str, name: str) -> None:
        users = [
            p
            for p in await self.namespace_pods(ns)
            if any(
                (v.get("persistentVolumeClaim") or {}).get("claimName") == name
                for v in (p.get("spec") or {}).get("volumes") or []
            )
        ]
        for pod in users[:MAX_REFERENCES]:
            if await self._relatable(pod):
                self._add_pod(pod)
                self.facts.add(f"{label(pvc)} is mounted by {label(pod)}")
            else:
                self.facts.skipped("Pods mounting the claim", pod)

    async def _owner(self, group: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        """Owners are shared (every Pod of a ReplicaSet): one read each per question."""
        key = (group, kind, name, namespace)
        if key not in self._owners:
            read = (self.reads.fetch if self.reads is not None else self.client.get)(
                group, kind, name, namespace
            )
            self._owners[key] = asyncio.ensure_future(self._try(f"{kind} {namespace}/{name}", read))
        found = await self._owners[key]
        return dict(found) if found is not None else None

    async def _owned_in_scope(self, obj: Mapping[str, Any], hops: int = 3) -> bool:
        """Follow controller owners (matching uid) up to ``hops``; in scope when one is."""
        current: Mapping[str, Any] = obj
        for _ in range(hops):
            refs = [r for r in meta(current).get("ownerReferences") or [] if r.get("controller")]
            if not refs:
                return False
            ref = refs[0]
            api = str(ref.get("apiVersion", ""))
            owner = await self._owner(
                api_group(api), str(ref.get("kind")), str(ref.get("name")), meta(current).get("namespace")
            )
            if owner is None or meta(owner).get("uid") != ref.get("uid"):
                return False
            owner.setdefault("kind", ref.get("kind"))
            owner.setdefault("apiVersion", api)
            if self.in_scope(owner):
                return True
            current = owner
        return False

    async def _volume(self, pvc: Mapping[str, Any], volume_name: str) -> None:
        absent = f"{label(pvc)} is bound to PersistentVolume {volume_name}, which does not exist"
        pv = await self._get("", "PersistentVolume", volume_name, None, absent=absent)
        if pv is None:
            return
        claim_ref = (pv.get("spec") or {}).get("claimRef") or {}
        bound_to_claim = claim_ref.get("uid") == meta(pvc).get("uid") or (
            not claim_ref.get("uid")
            and claim_ref.get("name") == meta(pvc).get("name")
            and claim_ref.get("namespace") == meta(pvc).get("namespace")
        )
        if claim_ref and not bound_to_claim:
            self.facts.skipped("PersistentVolume of a claim", pv)
            return
        slim = slim_volume(pv)
        self.facts.volumes[uid(pvc)] = slim
        zones = [
            f"{expr.get('key')} in {','.join(expr.get('values') or [])}"
            for term in (
                ((slim["spec"].get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms")
                or []
            )
            for expr in term.get("matchExpressions") or []
        ]
        self.facts.add(
            f"{label(pvc)} is bound to PersistentVolume {volume_name}: capacity "
            f"{(slim['spec'].get('capacity') or {}).get('storage', '?')}, access modes "
            f"{', '.join(slim['spec'].get('accessModes') or []) or '?'}"
            + (f", node affinity {'; '.join(zones)}" if zones else "")
        )

    async def _storage_class(self, pvc: Mapping[str, Any], name: str) -> None:
        absent = f"{label(pvc)} asks for StorageClass {name}, which does not exist in the cluster"
        sc = await self._get("storage.k8s.io", "StorageClass", name, None, absent=absent)
        if sc is None:
            return
        self.facts.add(
            f"StorageClass {name}: provisioner {sc.get('provisioner')}, volumeBindingMode "
            f"{sc.get('volumeBindingMode', 'Immediate')}"
        )

    # ---- nodes ----

    async def nodes(self) -> None:
        wanted = sorted(
            {
                str((p.get("spec") or {}).get("nodeName"))
                for p in self.snap.pods
                if (p.get("spec") or {}).get("nodeName") and pod_unhealthy(p)
            }
            - set(self.facts.nodes)
        )

        async def one(name: str) -> None:
            node = await self._get(
                "", "Node", name, None, absent=f"Node {name} (where a Pod runs) does not exist"
            )
            if node is None:
                return
            slim = slim_node(node)
            self.facts.nodes[name] = slim
            labels = slim["metadata"]["labels"]
            taints = [
                f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}" for t in slim["spec"]["taints"]
            ]
            conditions = [f"{c['type']}={c['status']}" for c in slim["status"]["conditions"]]
            self.facts.add(
                f"Node {name}: architecture {slim['status'].get('architecture') or labels.get('kubernetes.io/arch', '?')}"
                + (f", labels {labels_text(labels)}" if labels else "")
                + (f", taints {'; '.join(taints)}" if taints else "")
                + (f", conditions {', '.join(conditions)}" if conditions else "")
                + (", unschedulable" if slim["status"]["unschedulable"] else "")
            )

        await asyncio.gather(*(one(n) for n in wanted[:MAX_REFERENCES]))

    # ---- workloads ----

    async def previous_revision(self, workload: Mapping[str, Any]) -> None:
        """While a rollout is not complete, the previous revision's running Pod says how a start
        really goes: its log is read (the gatherer already holds the previous ReplicaSet)."""
        status = workload.get("status") or {}
        desired = (workload.get("spec") or {}).get("replicas", 1)
        stuck = (
            status.get("unavailableReplicas")
            or status.get("updatedReplicas", desired) != desired
            or any(p for p in self.snap.pods if pod_unhealthy(p))
        )
        if not stuck or workload.get("kind") != "Deployment":
            return
        sets = sorted(
            (o for o in self.snap.related if o.get("kind") == "ReplicaSet" and owned_by(o, uid(workload))),
            key=revision_of,
            reverse=True,
        )
        for old in sets[1:2]:
            for pod in self.snap.pods:
                if owned_by(pod, uid(old)) and not pod_unhealthy(pod):
                    for cs in container_statuses(pod)[:1]:
                        self._want_log(pod, str(cs.get("name")), previous=False)
                    self.facts.add(f"{label(pod)} runs the previous revision ({label(old)})")
                    break

    async def hpa(self, hpa: Mapping[str, Any]) -> None:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if not ref.get("name"):
            return
        api = str(ref.get("apiVersion", ""))
        ns = meta(hpa).get("namespace")
        absent = f"{label(hpa)} targets {ref.get('kind')} {ns}/{ref.get('name')}, which does not exist"
        target = await self._get(
            api_group(api), str(ref.get("kind")), str(ref.get("name")), ns, absent=absent
        )
        if target is None:
            return
        target.setdefault("kind", ref.get("kind"))
        target.setdefault("apiVersion", api)
        if not self.in_scope(target):
            self.facts.skipped("HPA target", target)
            return
        self._add_related(target)
        requests = [
            f"{c.get('name')}: requests {((c.get('resources') or {}).get('requests') or 'none')}, limits "
            f"{((c.get('resources') or {}).get('limits') or 'none')}"
            for c in ((target.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers")
            or []
        ]
        self.facts.add(f"{label(hpa)} scales {label(target)}; its containers: " + "; ".join(requests))

    async def cronjob(self, cron: Mapping[str, Any]) -> None:
        """The active Job of a CronJob that forbids overlap blocks every later run: read its log."""
        if (cron.get("spec") or {}).get("concurrencyPolicy") != "Forbid":
            return
        active = {str(a.get("name")) for a in (cron.get("status") or {}).get("active") or []}
        for job in self.snap.related:
            if job.get("kind") == "Job" and meta(job).get("name") in active:
                self.facts.add(
                    f"{label(cron)} (concurrencyPolicy Forbid) has active {label(job)} since "
                    f"{(job.get('status') or {}).get('startTime', '?')}; later runs are skipped while it runs"
                )
                for pod in self.snap.pods:
                    if owned_by(pod, uid(job)):
                        for cs in container_statuses(pod)[:1]:
                            self._want_log(pod, str(cs.get("name")), previous=False)

    # ---- Argo CD ----

    async def sync_results(self, app: Mapping[str, Any]) -> None:
        op = (app.get("status") or {}).get("operationState") or {}
        results = list((op.get("syncResult") or {}).get("resources") or [])
        for res in results:
            what = f"{res.get('kind')} {res.get('namespace') + '/' if res.get('namespace') else ''}{res.get('name')}"
            phase = res.get("hookPhase") or res.get("status") or "?"
            hook = f" ({res['hookType']} hook)" if res.get("hookType") else ""
            self.facts.add(f"last sync result: {what}{hook} {phase}: {res.get('message', '')}".rstrip(": "))
        wanted = [
            r
            for r in results
            if (r.get("hookType") and r.get("hookPhase") in ("Failed", "Error", "Running"))
            or r.get("status") == "SyncFailed"
        ][:MAX_HOOKS]

        async def one(res: Mapping[str, Any]) -> None:
            group, kind, name = str(res.get("group") or ""), str(res.get("kind")), str(res.get("name"))
            ns = res.get("namespace") or None
            obj = await self._try(
                f"{kind} {ns}/{name}", self.client.get(group, kind, name, ns, res.get("version"))
            )
            if obj is None:
                return
            obj.setdefault("kind", kind)
            if not self.in_scope(obj):
                self.facts.skipped("sync result resource", obj)
                return
            self._add_related(obj)
            self.facts.hook_objects.append(obj)
            if kind == "Job":
                selector = selector_string((obj.get("spec") or {}).get("selector"))
                pods = await self._try(
                    f"Pods of {label(obj)}", self.client.list("", "Pod", ns, label_selector=selector)
                )
                for pod in [p for p in pods or [] if owned_by(p, uid(obj))][:MAX_REFERENCES]:
                    self._add_pod(pod)
                    for cs in container_statuses(pod):
                        terminated = (cs.get("state") or {}).get("terminated") or {}
                        if terminated.get("exitCode", 0) != 0 or "running" in (cs.get("state") or {}):
                            self._want_log(pod, str(cs.get("name")), previous=False)

        await asyncio.gather(*(one(r) for r in wanted))

    async def missing_kinds(self, app: Mapping[str, Any]) -> None:
        """A Missing entry is not read live; API discovery still says whether its kind is served
        (a missing CRD), which is often the whole answer."""
        if self.snap.target is not None:
            return

        async def one(entry: Mapping[str, Any]) -> str | None:
            group, kind, version = str(entry.get("group") or ""), str(entry.get("kind")), entry.get("version")
            served = await self._try(f"API discovery for {kind}", self.client.resource(group, kind, version))
            return not_served_note(group, kind, version, resource_label(entry)) if served is None else None

        # Asked at once, not one entry after the other; noted in the Application's order (the
        # context's text must not depend on which answer came first).
        entries = [r for r in resources(app) if missing(r)][:MAX_REFERENCES]
        for note in await asyncio.gather(*(one(r) for r in entries)):
            if note is not None:
                self.snap.note(note)

    async def child_applications(self, app: Mapping[str, Any]) -> None:
        """App of apps: the children's own sync, health and last operation."""
        known = {uid(c) for c in self.facts.children}
        entries = [
            r
            for r in resources(app)
            if r.get("kind") == "Application" and (r.get("group") or "") == "argoproj.io"
        ]

        async def one(entry: Mapping[str, Any]) -> None:
            child = await self._try(
                f"Application {entry.get('namespace')}/{entry.get('name')}",
                self.client.get(
                    "argoproj.io", "Application", str(entry.get("name")), entry.get("namespace") or None
                ),
            )
            if child is not None and uid(child) not in known:
                child.setdefault("kind", "Application")
                self.facts.children.append(child)

        await asyncio.gather(*(one(e) for e in entries[:MAX_CHILD_APPS]))
        for child in self.facts.children:
            status = child.get("status") or {}
            op = status.get("operationState") or {}
            health = status.get("health") or {}
            self.facts.add(
                f"child Application {meta(child).get('name')}: sync {(status.get('sync') or {}).get('status', '?')} "
                f"(revision {(status.get('sync') or {}).get('revision', '?')}), health {health.get('status', '?')}"
                + (f" - {health['message']}" if health.get("message") else "")
                + (f"; last operation {op.get('phase')}: {op.get('message', '')}" if op else "")
            )

    # ---- logs ----

    def _want_log(self, pod: Mapping[str, Any], container: str, *, previous: bool) -> None:
        key = (str(meta(pod).get("namespace")), str(meta(pod).get("name")), container, previous)
        if key not in self._extra_logs:
            self._extra_logs.append(key)

    def _running_logs_wanted(self) -> None:
        """Running containers worth a look: the question asks about logs or behaviour; a sidecar
        crashes next to them; a Service routes to them (what port they listen on)."""
        asks = bool(_LOG_QUESTION.search(self.question))
        routed = (
            {uid(p) for pods in [self.snap.pods] for p in pods}
            if any(o.get("kind") in ("Ingress",) for o in self.snap.objects())
            else set()
        )
        for pod in self.snap.pods:
            statuses = list((pod.get("status") or {}).get("containerStatuses") or [])
            crashing = any(
                ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                for cs in statuses
            )
            for cs in statuses:
                running = "running" in (cs.get("state") or {})
                if not running:
                    continue
                if asks or (crashing and len(statuses) > 1) or uid(pod) in routed:
                    self._want_log(pod, str(cs.get("name")), previous=False)

    async def logs(self) -> None:
        if not self.read_logs:
            return
        self._running_logs_wanted()
        have = {(t.namespace, t.pod, t.container, t.previous) for t in self.snap.logs}
        wanted = [k for k in self._extra_logs if k not in have][:MAX_EXTRA_LOGS]

        async def one(ns: str, pod: str, container: str, previous: bool) -> None:
            text = await self._try(
                f"log of Pod {ns}/{pod} container {container}",
                (self.reads.log if self.reads is not None else self.client.pod_log)(
                    ns, pod, container, previous=previous, tail_lines=self.log_lines
                ),
            )
            if text and (ns, pod, container, previous) not in {
                (t.namespace, t.pod, t.container, t.previous) for t in self.snap.logs
            }:
                self.snap.logs.append(LogTail(ns, pod, container, previous, text))

        await asyncio.gather(*(one(*k) for k in wanted))

    def _summarise_out_of_scope(self) -> None:
        for relation, names in sorted(self.facts.out_of_scope.items()):
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            self.facts.add(
                f"{len(names)} object(s) reached by {relation} do not belong to this Application and are "
                f"not shown: {shown}"
            )
