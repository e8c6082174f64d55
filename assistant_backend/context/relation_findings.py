"""Findings for what the relation walkers reach (issue 12): each rule fires only on what Kubernetes
or Argo CD said, and cites the objects, fields, events or log lines it read.

Like the rules in ``findings.py`` these are pure functions of the snapshot; they are appended to its
``RULES``. Each docstring names the incident report the rule was written for (the eval scenario in
``evals/scenarios`` carries the same source).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from .. import linear
from .application import resource_label
from .objects import (
    Snapshot,
    container_spec,
    error_lines,
    label,
    log_evidence,
    meta,
    owned_by,
    selector_matches,
)
from .relations import facts_of, hpa_conditions

# Imported lazily by findings.py; this module must not import findings at load time.
FindingFactory = Callable[[str, str, tuple[str, ...]], Any]

_RBAC = linear.compile(
    r'is forbidden: User "([^"]{1,200})" cannot ([a-z]{1,20}) (?:resource )?"?([\w.-]{1,100})"?'
)
_ADMISSION = linear.compile(r'admission webhook "([^"]{1,200})" denied the request')
_EXEC_FORMAT = linear.compile(r"exec format error|exec user process caused")
_STARTED_IN = linear.compile(r"(?i)started \S+ in (\d+(?:\.\d+)?) ?s(?:econds)?")
_LISTEN = linear.compile(r"(?i)\blisten(?:ing)?\b[^\n]{0,40}?(?::|port )(\d{2,5})\b")
_MULTI_ATTACH = "Multi-Attach error"
_VOLUME_AFFINITY = "volume node affinity conflict"


def _when(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class Rules:
    """The rules, bound to the ``Finding`` class of findings.py (avoids an import cycle)."""

    def __init__(self, finding: FindingFactory) -> None:
        self.f = finding

    def all(self) -> tuple[Callable[[Snapshot], list[Any]], ...]:
        return (
            self.port_mismatch,
            self.ingress_no_endpoints,
            self.selector_nearest,
            self.config_key_missing,
            self.init_not_completing,
            self.sidecar_crash,
            self.liveness_slow_start,
            self.arch_mismatch,
            self.volume_node_affinity,
            self.multi_attach_rwo,
            self.ephemeral_storage,
            self.hook_pod_error,
            self.rbac_forbidden,
            self.admission_denied,
            self.child_app_failed,
            self.hpa_not_scaling,
            self.cronjob_blocked,
        )

    # ---- network ----

    def port_mismatch(self, snap: Snapshot) -> list[Any]:
        """Service targetPort that no container of its Pods declares (an Ingress 502).
        Source: https://stackengine.dev/ingress-502-backend-port-mismatch-nginx"""
        out = []
        for svc in snap.of_kind("Service"):
            selector = (svc.get("spec") or {}).get("selector") or {}
            pods = [
                p
                for p in snap.of_kind("Pod")
                if selector
                and meta(p).get("namespace") == meta(svc).get("namespace")
                and selector_matches(selector, meta(p).get("labels") or {})
            ]
            declared = [
                port
                for p in pods
                for c in (p.get("spec") or {}).get("containers") or []
                for port in c.get("ports") or []
            ]
            if not pods or not declared:
                continue
            numbers = {int(p["containerPort"]) for p in declared if p.get("containerPort")}
            names = {str(p.get("name")) for p in declared if p.get("name")}
            for port in (svc.get("spec") or {}).get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                if (isinstance(target, int) and target in numbers) or (
                    isinstance(target, str) and target in names
                ):
                    continue
                if isinstance(target, str) and target.isdigit() and int(target) in numbers:
                    continue
                heard = [
                    m.group(0) for p in pods for t in snap.logs_of(p) for m in [_LISTEN.search(t.text)] if m
                ]
                text = (
                    f"{label(svc)} sends port {port.get('port')} to targetPort {target}, but its Pods' containers "
                    f"declare {', '.join(str(n) for n in sorted(numbers)) or 'no such port'}"
                    + (f"; the log says: {heard[0]}" if heard else "")
                )
                sources = [f"{label(svc)} spec.ports", f"{label(pods[0])} spec.containers[].ports"]
                out.append(self.f("port_mismatch", text, tuple(sources)))
        return out

    def ingress_no_endpoints(self, snap: Snapshot) -> list[Any]:
        """An Ingress backend Service without ready endpoints (503/502 at the edge).
        Source: https://oneuptime.com/blog/post/2026-02-09-ingress-502-bad-gateway/view"""
        out = []
        services = {(meta(s).get("namespace"), meta(s).get("name")): s for s in snap.of_kind("Service")}
        endpoints = {(meta(e).get("namespace"), meta(e).get("name")): e for e in snap.of_kind("Endpoints")}
        for ing in snap.of_kind("Ingress"):
            ns = meta(ing).get("namespace")
            backends = set()
            for rule in (ing.get("spec") or {}).get("rules") or []:
                for path in (rule.get("http") or {}).get("paths") or []:
                    name = ((path.get("backend") or {}).get("service") or {}).get("name")
                    if name:
                        backends.add(str(name))
            for name in sorted(backends):
                ep = endpoints.get((ns, name))
                if (ns, name) not in services or ep is None:
                    continue
                ready = sum(len(s.get("addresses") or []) for s in ep.get("subsets") or [])
                not_ready = sum(len(s.get("notReadyAddresses") or []) for s in ep.get("subsets") or [])
                if ready == 0:
                    out.append(
                        self.f(
                            "ingress_no_endpoints",
                            f"{label(ing)} routes to Service {ns}/{name}, which has 0 ready address(es)"
                            + (f" ({not_ready} not ready)" if not_ready else ""),
                            (f"{label(ing)} spec.rules", f"Endpoints {ns}/{name}"),
                        )
                    )
        return out

    def selector_nearest(self, snap: Snapshot) -> list[Any]:
        """A Service selector that matches nothing, next to the Pods it should have matched.
        Source: https://grokdatum.github.io/grokdevops-wiki/library/case-studies/kubernetes_ops/service-no-endpoints/replay"""
        out = []
        facts = facts_of(snap)
        for svc in snap.of_kind("Service"):
            near = facts.nearest.get(str(meta(svc).get("uid")))
            selector = (svc.get("spec") or {}).get("selector") or {}
            if not near:
                continue
            labels = meta(near[0]).get("labels") or {}
            differ = [
                f"{k}={v} (Pod has {k}={labels.get(k, '<none>')})"
                for k, v in selector.items()
                if labels.get(k) != v
            ]
            out.append(
                self.f(
                    "selector_mismatch",
                    f"{label(svc)} selects nothing; the nearest Pod {label(near[0])} differs in "
                    + ", ".join(differ),
                    (f"{label(svc)} spec.selector", f"{label(near[0])} metadata.labels"),
                )
            )
        return out

    # ---- configuration ----

    def config_key_missing(self, snap: Snapshot) -> list[Any]:
        """A referenced ConfigMap key that the ConfigMap does not have (names its keys), or a
        referenced ConfigMap / ServiceAccount / PVC / Ingress backend Service that does not exist.
        Sources: https://github.com/kubernetes/kubernetes/issues/41573,
        https://github.com/rustyrazorblade/easy-db-lab/issues/733"""
        out = []
        facts = facts_of(snap)
        for pod in snap.of_kind("Pod"):
            ns = str(meta(pod).get("namespace"))
            for container in list((pod.get("spec") or {}).get("containers") or []) + list(
                (pod.get("spec") or {}).get("initContainers") or []
            ):
                for env in container.get("env") or []:
                    ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
                    keys = facts.config_keys.get(("ConfigMap", ns, str(ref.get("name"))))
                    if ref and keys is not None and ref.get("key") not in keys and not ref.get("optional"):
                        out.append(
                            self.f(
                                "config_key_missing",
                                f"{label(pod)} container {container.get('name')} needs key {ref.get('key')} of "
                                f"ConfigMap {ns}/{ref.get('name')}, which has only: {', '.join(keys) or 'no keys'}",
                                (
                                    f"{label(pod)} spec env {env.get('name')}",
                                    f"ConfigMap {ns}/{ref.get('name')} keys",
                                ),
                            )
                        )
        pending = {label(p) for p in snap.of_kind("Pod") if (p.get("status") or {}).get("phase") == "Pending"}
        for kind, ns, name, by in facts.missing_refs:
            # A running Pod's ServiceAccount existed when it started; its absence now explains nothing.
            if kind in ("ConfigMap", "PersistentVolumeClaim", "Service") or (
                kind == "ServiceAccount" and by in pending
            ):
                out.append(
                    self.f(
                        "reference_missing",
                        f"{by} references {kind} {ns}/{name}, which does not exist",
                        (f"{by} spec", f"{kind} {ns}/{name} (404)"),
                    )
                )
        return out

    # ---- containers ----

    def init_not_completing(self, snap: Snapshot) -> list[Any]:
        """An init container that keeps the Pod in Init (running forever, waiting, or failing).
        Source: https://github.com/kubernetes-retired/poseidon/issues/125"""
        out = []
        for pod in snap.of_kind("Pod"):
            for cs in (pod.get("status") or {}).get("initContainerStatuses") or []:
                state = cs.get("state") or {}
                terminated = state.get("terminated") or {}
                if terminated.get("exitCode") == 0:
                    continue
                which = next(iter(state), "unknown")
                reason = (state.get(which) or {}).get("reason") or ""
                text = (
                    f"{label(pod)} init container {cs.get('name')} has not completed ({which}"
                    f"{' ' + reason if reason else ''}, restarts {cs.get('restartCount', 0)}); the app containers wait"
                )
                evidence, logged = log_evidence(snap, pod, str(cs.get("name")), "its log ends", errors=False)
                sources = (f"{label(pod)} status.initContainerStatuses", *logged)
                out.append(self.f("init_not_completing", text + evidence, sources))
        return out

    def sidecar_crash(self, snap: Snapshot) -> list[Any]:
        """One container of a Pod crash-loops while another runs (a sidecar such as a proxy).
        Source: https://github.com/GoogleCloudPlatform/cloud-sql-proxy/issues/403"""
        out = []
        for pod in snap.of_kind("Pod"):
            statuses = list((pod.get("status") or {}).get("containerStatuses") or [])
            running = [cs for cs in statuses if "running" in (cs.get("state") or {})]
            for cs in statuses:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") != "CrashLoopBackOff" or not running:
                    continue
                text = (
                    f"{label(pod)}: container {cs.get('name')} crash-loops (restarts {cs.get('restartCount', 0)}) "
                    f"while {', '.join(str(r.get('name')) for r in running)} keeps running"
                )
                evidence, logged = log_evidence(
                    snap, pod, str(cs.get("name")), "its last log line", errors=False
                )
                sources = (f"{label(pod)} status.containerStatuses", *logged)
                out.append(self.f("sidecar_crash", text + evidence, sources))
        return out

    def liveness_slow_start(self, snap: Snapshot) -> list[Any]:
        """The liveness probe kills a container that is still starting: restarts, runs that end
        right when the probe's grace runs out, no startupProbe.
        Sources: https://github.com/treeverse/charts/issues/143, https://github.com/kserve/kserve/pull/4840"""
        out = []
        started_in = [
            (t, float(m.group(1) or 0)) for t in snap.logs for m in [_STARTED_IN.search(t.text)] if m
        ]
        for pod in snap.of_kind("Pod"):
            kills = [
                e
                for e in snap.events_about(pod, {"Killing", "Unhealthy"})
                if "liveness" in str(e.get("message", "")).lower()
            ]
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                spec = container_spec(pod, str(cs.get("name")))
                probe = spec.get("livenessProbe") or {}
                if not probe or spec.get("startupProbe") or cs.get("restartCount", 0) < 3 or not kills:
                    continue
                delay = int(probe.get("initialDelaySeconds", 0))
                grace = delay + int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))
                last = (cs.get("lastState") or {}).get("terminated") or {}
                began, ended = _when(last.get("startedAt")), _when(last.get("finishedAt"))
                ran = (
                    f"; the last run lasted {int((ended - began).total_seconds())}s"
                    if began and ended
                    else ""
                )
                text = (
                    f"{label(pod)} container {cs.get('name')} is restarted by its liveness probe "
                    f"(restarts {cs.get('restartCount', 0)}): initialDelaySeconds: {delay}, about {grace}s before "
                    f"the kubelet kills it{ran}, and no startupProbe"
                )
                sources = [
                    f"{label(pod)} spec livenessProbe",
                    f"{label(pod)} status",
                    "event Killing/Unhealthy",
                ]
                if started_in:
                    tail, seconds = max(started_in, key=lambda x: x[1])
                    text += f"; a start takes {seconds:g}s ({tail.label})"
                    sources.append(f"log {tail.label}")
                out.append(self.f("liveness_slow_start", text, tuple(sources)))
        return out

    def arch_mismatch(self, snap: Snapshot) -> list[Any]:
        """``exec format error``: the image's binary is for another CPU than the node's.
        Source: https://devopsaitoolkit.com/blog/kubernetes-error-exec-format-error/"""
        out = []
        nodes = facts_of(snap).nodes
        for pod in snap.of_kind("Pod"):
            for tail in snap.logs_of(pod):
                match = _EXEC_FORMAT.search(tail.text)
                if not match:
                    continue
                node_name = str((pod.get("spec") or {}).get("nodeName") or "")
                node = nodes.get(node_name)
                arch = (
                    (node or {}).get("status", {}).get("architecture")
                    or ((node or {}).get("metadata", {}).get("labels") or {}).get("kubernetes.io/arch")
                    or "unknown"
                )
                image = container_spec(pod, tail.container).get("image", "?")
                out.append(
                    self.f(
                        "arch_mismatch",
                        f"{label(pod)} container {tail.container} ({image}) cannot execute on Node {node_name} "
                        f"(architecture {arch}): exec format error - the image has no build for {arch}",
                        (f"log {tail.label}", f"Node {node_name} status.nodeInfo.architecture / labels"),
                    )
                )
                break
        return out

    # ---- storage ----

    def volume_node_affinity(self, snap: Snapshot) -> list[Any]:
        """The scheduler finds no node in the zone of the Pod's bound volume.
        Source: https://github.com/aws/karpenter-provider-aws/issues/2971"""
        out = []
        facts = facts_of(snap)
        for pod in snap.of_kind("Pod"):
            events = [
                e
                for e in snap.events_about(pod, {"FailedScheduling"})
                if _VOLUME_AFFINITY in str(e.get("message"))
            ]
            conditions = [
                c
                for c in (pod.get("status") or {}).get("conditions") or []
                if _VOLUME_AFFINITY in str(c.get("message", ""))
            ]
            if not events and not conditions:
                continue
            claims = {
                (v.get("persistentVolumeClaim") or {}).get("claimName")
                for v in (pod.get("spec") or {}).get("volumes") or []
            }
            zones = []
            for pvc in snap.of_kind("PersistentVolumeClaim"):
                if meta(pvc).get("name") in claims:
                    pv = facts.volumes.get(str(meta(pvc).get("uid")))
                    for term in (
                        ((pv or {}).get("spec", {}).get("nodeAffinity") or {}).get("required") or {}
                    ).get("nodeSelectorTerms") or []:
                        for expr in term.get("matchExpressions") or []:
                            zones.append(
                                f"{label(pvc)} -> PersistentVolume {(pv or {}).get('metadata', {}).get('name')} "
                                f"needs {expr.get('key')} in {','.join(expr.get('values') or [])}"
                            )
            out.append(
                self.f(
                    "volume_node_affinity",
                    f"{label(pod)} cannot be scheduled next to its volume: volume node affinity conflict"
                    + (f"; {'; '.join(zones)}" if zones else ""),
                    ("event FailedScheduling", "PersistentVolume spec.nodeAffinity"),
                )
            )
        return out

    def multi_attach_rwo(self, snap: Snapshot) -> list[Any]:
        """A rolling update needs a ReadWriteOnce volume on two Pods at once (Multi-Attach error).
        Source: https://github.com/Azure/AKS/issues/1919"""
        out = []
        for pod in snap.of_kind("Pod"):
            events = [e for e in snap.events_about(pod) if _MULTI_ATTACH in str(e.get("message", ""))]
            if not events:
                continue
            claims = {
                (v.get("persistentVolumeClaim") or {}).get("claimName")
                for v in (pod.get("spec") or {}).get("volumes") or []
            }
            modes = [
                f"{label(c)} {', '.join((c.get('spec') or {}).get('accessModes') or [])}"
                for c in snap.of_kind("PersistentVolumeClaim")
                if meta(c).get("name") in claims
            ]
            strategies = [
                f"{label(d)} strategy {((d.get('spec') or {}).get('strategy') or {}).get('type', 'RollingUpdate')}"
                for d in snap.of_kind("Deployment")
            ]
            out.append(
                self.f(
                    "multi_attach_rwo",
                    f"{label(pod)} waits for its volume: {events[-1].get('message')}"
                    + (f"; access modes: {'; '.join(modes)}" if modes else "")
                    + (
                        f"; {'; '.join(strategies)} starts the new Pod before the old one releases it"
                        if strategies
                        else ""
                    ),
                    (
                        "event FailedAttachVolume",
                        "PersistentVolumeClaim spec.accessModes",
                        "Deployment spec.strategy",
                    ),
                )
            )
        return out

    def ephemeral_storage(self, snap: Snapshot) -> list[Any]:
        """Evicted for node ephemeral-storage pressure, with the emptyDir volumes and requests.
        Source: https://github.com/kubernetes/kubernetes/issues/91600"""
        out = []
        for pod in snap.of_kind("Pod"):
            status = pod.get("status") or {}
            if status.get("reason") != "Evicted" or "ephemeral-storage" not in str(status.get("message", "")):
                continue
            spec = pod.get("spec") or {}
            empty_dirs = [str(v.get("name")) for v in spec.get("volumes") or [] if "emptyDir" in v]
            requests = [
                f"{c.get('name')} {((c.get('resources') or {}).get('requests') or {}).get('ephemeral-storage', 'none')}"
                for c in spec.get("containers") or []
            ]
            out.append(
                self.f(
                    "ephemeral_storage",
                    f"{label(pod)} was evicted for node ephemeral-storage pressure: {status.get('message', '').strip()}"
                    f"; ephemeral-storage requests: {', '.join(requests)}"
                    + (f"; emptyDir volumes: {', '.join(empty_dirs)}" if empty_dirs else ""),
                    (f"{label(pod)} status", f"{label(pod)} spec.volumes / resources"),
                )
            )
        return out

    # ---- Argo CD ----

    def hook_pod_error(self, snap: Snapshot) -> list[Any]:
        """A failed sync hook Job and the error line its Pod logged.
        Source: https://github.com/argoproj/argo-cd/issues/5086"""
        out = []
        for job in facts_of(snap).hook_objects:
            for pod in snap.of_kind("Pod"):
                if not owned_by(pod, str(meta(job).get("uid"))):
                    continue
                for tail in snap.logs_of(pod):
                    said = error_lines(tail.text, limit=1)
                    if said:
                        out.append(
                            self.f(
                                "hook_pod_error",
                                f"hook {label(job)} ran {label(pod)}, whose log says: {said[0]}",
                                ("Application operationState.syncResult", f"log {tail.label}"),
                            )
                        )
                        break
        return out

    def rbac_forbidden(self, snap: Snapshot) -> list[Any]:
        """RBAC "forbidden" lines in a container's log (it runs, but cannot do its work).
        Source: https://github.com/vmware-archive/kubewatch/issues/95"""
        out: dict[tuple[str, str], Any] = {}
        for tail in snap.logs:
            for line in tail.text.splitlines():
                match = _RBAC.search(line)
                key = (tail.label, (match.group(0) or "") if match else "")
                if match and key not in out:
                    user, verb, what = match.group(1), match.group(2), match.group(3)
                    out[key] = self.f(
                        "rbac_forbidden",
                        f"{tail.label}: the API server refused {user} to {verb} {what}: {line.strip()[-300:]}",
                        (f"log {tail.label}",),
                    )
        return list(out.values())[:3]

    def admission_denied(self, snap: Snapshot) -> list[Any]:
        """An admission webhook denied a resource during the last sync.
        Sources: https://github.com/siutsin/otaru/pull/2356, https://github.com/deployKF/deployKF/issues/174"""
        if snap.app is None:
            return []
        op = (snap.app.get("status") or {}).get("operationState") or {}
        out = []
        for res in (op.get("syncResult") or {}).get("resources") or []:
            match = _ADMISSION.search(str(res.get("message", "")))
            if match:
                out.append(
                    self.f(
                        "admission_denied",
                        f"admission webhook {match.group(1)} denied {resource_label(res)}: {res.get('message', '')}",
                        (f"sync result {resource_label(res)}",),
                    )
                )
        return out

    def child_app_failed(self, snap: Snapshot) -> list[Any]:
        """App of apps: a child Application that is not Synced/Healthy or whose sync failed.
        Source: https://github.com/argoproj/argo-cd/issues/15830"""
        out = []
        for child in facts_of(snap).children:
            status = child.get("status") or {}
            sync = (status.get("sync") or {}).get("status")
            health = (status.get("health") or {}).get("status")
            op = status.get("operationState") or {}
            problems = []
            if health not in (None, "Healthy"):
                problems.append(f"health {health}")
            if sync not in (None, "Synced"):
                problems.append(f"sync {sync}")
            if op.get("phase") in ("Failed", "Error"):
                problems.append(f"last sync {op['phase']}: {op.get('message', '')}")
            if problems:
                out.append(
                    self.f(
                        "child_app_failed",
                        f"child Application {meta(child).get('name')}: {'; '.join(problems)}",
                        (f"Application {meta(child).get('namespace')}/{meta(child).get('name')} status",),
                    )
                )
        return out

    def hpa_not_scaling(self, snap: Snapshot) -> list[Any]:
        """An HPA that cannot compute or apply a scale (ScalingActive / AbleToScale False).
        Source: https://github.com/kubernetes/kubernetes/issues/79365"""
        out = []
        for hpa in snap.of_kind("HorizontalPodAutoscaler"):
            for c in hpa_conditions(hpa):
                if c.get("type") in ("ScalingActive", "AbleToScale") and c.get("status") == "False":
                    out.append(
                        self.f(
                            "hpa_not_scaling",
                            f"{label(hpa)} {c.get('type')} is False ({c.get('reason', '')}): {c.get('message', '')}",
                            (f"{label(hpa)} status condition {c.get('type')}",),
                        )
                    )
        return out

    def cronjob_blocked(self, snap: Snapshot) -> list[Any]:
        """A CronJob with concurrencyPolicy Forbid whose active Job has run for over an hour: every
        later run is skipped. Source: https://github.com/harn3ss/open-infra/issues/104"""
        out = []
        now = dt.datetime.now(dt.UTC)
        jobs = {meta(j).get("name"): j for j in snap.of_kind("Job")}
        for cron in snap.of_kind("CronJob"):
            if (cron.get("spec") or {}).get("concurrencyPolicy") != "Forbid":
                continue
            for active in (cron.get("status") or {}).get("active") or []:
                job = jobs.get(active.get("name"))
                started = _when(((job or {}).get("status") or {}).get("startTime"))
                if job is None or started is None or now - started < dt.timedelta(hours=1):
                    continue
                out.append(
                    self.f(
                        "cronjob_blocked",
                        f"{label(cron)} forbids overlapping runs and {label(job)} has been active since "
                        f"{started.isoformat()}; no later run starts until it ends",
                        (
                            f"{label(cron)} spec.concurrencyPolicy / status.active",
                            f"{label(job)} status.startTime",
                        ),
                    )
                )
        return out
