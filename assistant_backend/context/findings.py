"""Deterministic diagnoses: name the problem before the model sees anything.

Each rule is a pure function of the :class:`~.objects.Snapshot` and returns findings that cite the
object and the status field, event or log line they came from, so the model (and the user) can
check them. Rules never guess: they fire only on what Kubernetes or Argo CD said.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import linear
from ..linear import Match, Regex
from .application import failed_sync_results, resource_label, resources
from .diff import summary
from .objects import (
    Snapshot,
    container_spec,
    container_statuses,
    label,
    labels_selector,
    log_evidence,
    meta,
    selector_matches,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # stable id, e.g. "image_pull"
    message: str  # one line a human can act on
    sources: tuple[str, ...]  # where it came from: "Pod shop/web-1 status", "event FailedScheduling"

    def render(self) -> str:
        return f"- [{self.rule}] {self.message} (source: {'; '.join(self.sources)})"


Rule = Callable[[Snapshot], list[Finding]]


def _event_source(event: Mapping[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    return f"event {event.get('reason')} on {involved.get('kind')} {involved.get('name')}"


# ---- Pod rules ---------------------------------------------------------------------------------

_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}


def image_pull(snap: Snapshot) -> list[Finding]:
    out = []
    for pod in snap.of_kind("Pod"):
        for cs in container_statuses(pod):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _PULL:
                image = cs.get("image") or container_spec(pod, str(cs.get("name"))).get("image", "?")
                sources = [f"{label(pod)} status"]
                detail = waiting.get("message") or ""
                pulls = [
                    e
                    for e in snap.events_about(pod, ["Failed"])
                    if "pull" in str(e.get("message", "")).lower()
                ]
                if pulls:
                    detail = str(pulls[-1].get("message"))
                    sources.append(_event_source(pulls[-1]))
                out.append(
                    Finding(
                        "image_pull",
                        f"{label(pod)} container {cs.get('name')} cannot pull image {image}: {waiting['reason']}"
                        + (f" - {detail}" if detail else ""),
                        tuple(sources),
                    )
                )
    return out


def crash_loop(snap: Snapshot) -> list[Finding]:
    out = []
    for pod in snap.of_kind("Pod"):
        for cs in container_statuses(pod):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") != "CrashLoopBackOff":
                continue
            last = (cs.get("lastState") or {}).get("terminated") or {}
            text = (
                f"{label(pod)} container {cs.get('name')} is in CrashLoopBackOff "
                f"(restarts {cs.get('restartCount', 0)}"
            )
            if last:
                text += f", last exit code {last.get('exitCode')} reason {last.get('reason', '?')}"
            evidence, logged = log_evidence(snap, pod, str(cs.get("name")), "last log lines")
            out.append(Finding("crash_loop", f"{text}){evidence}", (f"{label(pod)} status", *logged)))
    return out


def oom_killed(snap: Snapshot) -> list[Finding]:
    out = []
    for pod in snap.of_kind("Pod"):
        for cs in container_statuses(pod):
            terminated = (
                (cs.get("lastState") or {}).get("terminated")
                or (cs.get("state") or {}).get("terminated")
                or {}
            )
            if terminated.get("reason") != "OOMKilled":
                continue
            limit = (
                (container_spec(pod, str(cs.get("name"))).get("resources") or {}).get("limits") or {}
            ).get("memory", "none set")
            out.append(
                Finding(
                    "oom_killed",
                    f"{label(pod)} container {cs.get('name')} was OOMKilled (exit code {terminated.get('exitCode', 137)}); "
                    f"memory limit {limit}",
                    (f"{label(pod)} status",),
                )
            )
    return out


def _classify_scheduling(message: str) -> str:
    lower = message.lower()
    if "insufficient" in lower or "too many pods" in lower:
        return "insufficient resources"
    if "taint" in lower:
        return "node taints not tolerated"
    if "node selector" in lower or "affinity" in lower or "didn't match" in lower:
        return "node selector/affinity matches no node"
    if "persistentvolumeclaim" in lower or "volume" in lower:
        return "volume binding"
    return "unschedulable"


def failed_scheduling(snap: Snapshot) -> list[Finding]:
    out = []
    for pod in snap.of_kind("Pod"):
        events = snap.events_about(pod, ["FailedScheduling"])
        condition = next(
            (
                c
                for c in (pod.get("status") or {}).get("conditions") or []
                if c.get("type") == "PodScheduled" and c.get("status") == "False"
            ),
            None,
        )
        if events:
            message, source = str(events[-1].get("message", "")), _event_source(events[-1])
        elif condition:
            message, source = (
                str(condition.get("message") or condition.get("reason", "")),
                f"{label(pod)} status",
            )
        else:
            continue
        out.append(
            Finding(
                "failed_scheduling",
                f"{label(pod)} cannot be scheduled ({_classify_scheduling(message)}): {message}",
                (source,),
            )
        )
    return out


_PROBE = linear.compile(r"(?i)\b(readiness|liveness|startup) probe failed")


def probe_failures(snap: Snapshot) -> list[Finding]:
    out = []
    for pod in snap.of_kind("Pod"):
        latest: dict[str, Mapping[str, Any]] = {}
        for event in snap.events_about(pod, ["Unhealthy"]):
            match = _PROBE.search(str(event.get("message", "")))
            if match:
                latest[(match.group(1) or "").lower()] = event
        for probe, event in sorted(latest.items()):
            count = event.get("count") or 1
            out.append(
                Finding(
                    "probe_failed",
                    f"{label(pod)}: {probe} probe failing ({count}x): {event.get('message')}",
                    (_event_source(event),),
                )
            )
    return out


_MISSING_REF = linear.compile(r'(?i)\b(configmaps?|secrets?)\s+"([^"]+)"\s+not found')
_MISSING_KEY = linear.compile(r"(?i)couldn't find key (\S+) in (ConfigMap|Secret) (\S+)")


def missing_config(snap: Snapshot) -> list[Finding]:
    out: dict[str, Finding] = {}
    for pod in snap.of_kind("Pod"):
        texts: list[tuple[str, str]] = []
        for cs in container_statuses(pod):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("message"):
                texts.append((str(waiting["message"]), f"{label(pod)} status"))
        for event in snap.events_about(pod, ["FailedMount", "Failed"]):
            texts.append((str(event.get("message", "")), _event_source(event)))
        for text, source in texts:
            for match in _MISSING_REF.finditer(text):
                kind = "ConfigMap" if match.group(1).lower().startswith("configmap") else "Secret"
                key = f"{kind}/{match.group(2)}"
                out.setdefault(
                    key,
                    Finding(
                        "missing_config",
                        f"{label(pod)} references {kind} {match.group(2)}, which does not exist: {text}",
                        (source,),
                    ),
                )
            for match in _MISSING_KEY.finditer(text):
                key = f"{match.group(2)}/{match.group(3)}/{match.group(1)}"
                out.setdefault(
                    key,
                    Finding(
                        "missing_config",
                        f"{label(pod)} needs key {match.group(1)} missing from {match.group(2)} {match.group(3)}",
                        (source,),
                    ),
                )
    return list(out.values())


def volume_problems(snap: Snapshot) -> list[Finding]:
    out = []
    for pvc in snap.of_kind("PersistentVolumeClaim"):
        if (pvc.get("status") or {}).get("phase") == "Pending":
            events = snap.events_about(pvc)
            detail = f": {events[-1].get('message')}" if events else ""
            sources = [f"{label(pvc)} status"] + ([_event_source(events[-1])] if events else [])
            storage_class = (pvc.get("spec") or {}).get("storageClassName") or "default"
            out.append(
                Finding(
                    "pvc_pending",
                    f"{label(pvc)} is Pending (storageClass {storage_class}){detail}",
                    tuple(sources),
                )
            )
    for pod in snap.of_kind("Pod"):
        for event in snap.events_about(pod, ["FailedMount", "FailedAttachVolume"]):
            if _MISSING_REF.search(str(event.get("message", ""))):
                continue  # reported by missing_config
            out.append(
                Finding(
                    "mount_failed",
                    f"{label(pod)} volume problem: {event.get('message')}",
                    (_event_source(event),),
                )
            )
            break
    return out


def evicted(snap: Snapshot) -> list[Finding]:
    return [
        Finding(
            "evicted",
            f"{label(pod)} was evicted: {(pod.get('status') or {}).get('message', '')}",
            (f"{label(pod)} status",),
        )
        for pod in snap.of_kind("Pod")
        if (pod.get("status") or {}).get("reason") == "Evicted"
    ]


def container_errors(snap: Snapshot) -> list[Finding]:
    """Containers that exited non-zero outside a crash loop (Jobs, hooks, one-shot Pods)."""
    out = []
    for pod in snap.of_kind("Pod"):
        for cs in container_statuses(pod):
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated and terminated.get("exitCode", 0) != 0 and terminated.get("reason") != "OOMKilled":
                evidence, logged = log_evidence(snap, pod, str(cs.get("name")), "last log lines")
                text = (
                    f"{label(pod)} container {cs.get('name')} exited with code {terminated.get('exitCode')} "
                    f"({terminated.get('reason', 'Error')}){evidence}"
                )
                out.append(Finding("container_failed", text, (f"{label(pod)} status", *logged)))
    return out


# ---- Workload and Service rules ----------------------------------------------------------------


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _condition_rule(
    rule: str,
    kind: str,
    condition: str,
    fires: Callable[[Mapping[str, Any]], bool],
    describe: Callable[[Mapping[str, Any], Mapping[str, Any]], str],
) -> Rule:
    """A rule on one status condition of every object of a kind: ``describe(obj, condition)``
    when ``fires(condition)``."""

    def run(snap: Snapshot) -> list[Finding]:
        return [
            Finding(rule, describe(obj, found), (f"{label(obj)} status condition {condition}",))
            for obj in snap.of_kind(kind)
            if (found := _condition(obj, condition)) is not None and fires(found)
        ]

    run.__name__ = rule
    return run


def _rollout_stuck(deploy: Mapping[str, Any], progressing: Mapping[str, Any]) -> str:
    status = deploy.get("status") or {}
    return (
        f"{label(deploy)} rollout is stuck (ProgressDeadlineExceeded): {progressing.get('message', '')}; "
        f"{status.get('updatedReplicas', 0)} updated, {status.get('availableReplicas', 0)} available of "
        f"{(deploy.get('spec') or {}).get('replicas', 1)} desired"
    )


def _job_failed(job: Mapping[str, Any], failed: Mapping[str, Any]) -> str:
    return (
        f"{label(job)} failed: {failed.get('reason', '')} - {failed.get('message', '')} "
        f"({(job.get('status') or {}).get('failed', 0)} failed Pods)"
    )


rollout_stuck = _condition_rule(
    "rollout_stuck",
    "Deployment",
    "Progressing",
    lambda c: c.get("reason") == "ProgressDeadlineExceeded",
    _rollout_stuck,
)
job_failed = _condition_rule("job_failed", "Job", "Failed", lambda c: c.get("status") == "True", _job_failed)


def service_without_endpoints(snap: Snapshot) -> list[Finding]:
    out = []
    for svc in snap.of_kind("Service"):
        selector = (svc.get("spec") or {}).get("selector")
        if not selector or (svc.get("spec") or {}).get("type") == "ExternalName":
            continue
        endpoints = next(
            (
                o
                for o in snap.of_kind("Endpoints")
                if meta(o).get("name") == meta(svc).get("name")
                and meta(o).get("namespace") == meta(svc).get("namespace")
            ),
            None,
        )
        ready = sum(len(s.get("addresses") or []) for s in (endpoints or {}).get("subsets") or [])
        if ready:
            continue
        sel = labels_selector(selector)
        matching = [
            p
            for p in snap.of_kind("Pod")
            if meta(p).get("namespace") == meta(svc).get("namespace")
            and selector_matches(selector, meta(p).get("labels") or {})
        ]
        if not matching:
            why = f"its selector {sel} matches no Pod"
        else:
            why = f"{len(matching)} Pod(s) match selector {sel} but none is ready"
        out.append(
            Finding(
                "service_no_endpoints",
                f"{label(svc)} has no ready endpoints: {why}",
                (f"{label(svc)} spec.selector", "Endpoints " + str(meta(svc).get("name"))),
            )
        )
    return out


# ---- Argo CD rules -----------------------------------------------------------------------------


def _app_messages(snap: Snapshot) -> list[tuple[str, str]]:
    """Every message Argo CD recorded: conditions, operation, sync results, resource health."""
    if snap.app is None:
        return []
    status = snap.app.get("status") or {}
    out: list[tuple[str, str]] = []
    for condition in status.get("conditions") or []:
        out.append((str(condition.get("message", "")), f"Application condition {condition.get('type')}"))
    op = status.get("operationState") or {}
    if op.get("message"):
        out.append((str(op["message"]), "Application operationState"))
    for res in (op.get("syncResult") or {}).get("resources") or []:
        if res.get("message"):
            out.append((str(res["message"]), f"sync result {resource_label(res)}"))
    for entry in resources(snap.app):
        message = (entry.get("health") or {}).get("message")
        if message:
            out.append((str(message), f"Application resource {resource_label(entry)}"))
    return out


def sync_failed(snap: Snapshot) -> list[Finding]:
    if snap.app is None:
        return []
    op = (snap.app.get("status") or {}).get("operationState") or {}
    if op.get("phase") not in ("Failed", "Error"):
        return []
    out = [
        Finding(
            "sync_failed",
            f"the last sync {op['phase']}: {op.get('message', '')}",
            ("Application operationState",),
        )
    ]
    for res in failed_sync_results((op.get("syncResult") or {}).get("resources") or []):
        if res.get("hookType"):
            out.append(
                Finding(
                    "hook_failed",
                    f"{res['hookType']} hook {resource_label(res)} {res.get('hookPhase', 'Failed')}: {res.get('message', '')}",
                    (f"sync result {resource_label(res)}",),
                )
            )
        else:
            out.append(
                Finding(
                    "sync_failed",
                    f"{resource_label(res)} failed to sync: {res.get('message', '')}",
                    (f"sync result {resource_label(res)}",),
                )
            )
    return out


def out_of_sync(snap: Snapshot) -> list[Finding]:
    if snap.app is None:
        return []
    entries = [e for e in resources(snap.app) if e.get("status") == "OutOfSync"]
    if not entries:
        return []
    names = ", ".join(resource_label(e) for e in entries[:8])
    more = f" and {len(entries) - 8} more" if len(entries) > 8 else ""
    prune = [e for e in entries if e.get("requiresPruning")]
    extra = f"; {len(prune)} require pruning" if prune else ""
    return [
        Finding(
            "out_of_sync",
            f"{len(entries)} resource(s) OutOfSync: {names}{more}{extra}",
            ("Application status.resources",),
        )
    ]


def out_of_sync_fields(snap: Snapshot) -> list[Finding]:
    """What differs from Git, per resource, from the diff of the attached target and live states."""
    return [
        Finding(
            "out_of_sync_diff",
            f"{diff.ref} differs from Git: {summary(diff)}",
            ("Argo CD managed-resources (target vs live)",),
        )
        for diff in snap.diffs
    ]


_UNKNOWN_KIND = linear.compile(
    r'(?i)(no matches for kind "[^"]+" in (?:version|group) "[^"]+"|the server could not find the requested resource'
    r"|ensure CRDs are installed first|could not find the requested resource|could not find \S+ for requested resource"
    r"|CRD is installed)"
)
_NAMESPACE_MISSING = linear.compile(r'(?i)namespaces? "([^"]+)" not found')
_QUOTA = linear.compile(r"(?i)exceeded quota|forbidden: exceeded quota|quota exceeded")


def _message_rule(rule: str, pattern: Regex, describe: Callable[[Match, str], str]) -> Rule:
    def run(snap: Snapshot) -> list[Finding]:
        out: dict[str, Finding] = {}
        candidates = list(_app_messages(snap))
        for event in snap.events:
            candidates.append((str(event.get("message", "")), _event_source(event)))
        for obj in snap.objects():
            for condition in (obj.get("status") or {}).get("conditions") or []:
                if condition.get("message"):
                    candidates.append(
                        (str(condition["message"]), f"{label(obj)} condition {condition.get('type')}")
                    )
        for text, source in candidates:
            match = pattern.search(text)
            if match and text not in out:
                out[text] = Finding(rule, describe(match, text), (source,))
        return list(out.values())[:3]

    return run


missing_kind = _message_rule(
    "unknown_kind",
    _UNKNOWN_KIND,
    lambda m, t: f"a resource kind is not known to the cluster (missing CRD?): {t}",
)
namespace_missing = _message_rule(
    "namespace_missing", _NAMESPACE_MISSING, lambda m, t: f"namespace {m.group(1)} does not exist: {t}"
)
quota_exceeded = _message_rule("quota_exceeded", _QUOTA, lambda m, t: f"a ResourceQuota blocks creation: {t}")


def app_conditions(snap: Snapshot) -> list[Finding]:
    if snap.app is None:
        return []
    out = []
    for condition in (snap.app.get("status") or {}).get("conditions") or []:
        kind = str(condition.get("type", ""))
        if kind.endswith("Error") or kind.endswith("Warning"):
            out.append(
                Finding(
                    "app_condition",
                    f"Application condition {kind}: {condition.get('message', '')}",
                    (f"Application condition {kind}",),
                )
            )
    return out


RULES: tuple[Rule, ...] = (
    sync_failed,
    app_conditions,
    missing_kind,
    namespace_missing,
    quota_exceeded,
    image_pull,
    crash_loop,
    oom_killed,
    failed_scheduling,
    missing_config,
    volume_problems,
    probe_failures,
    evicted,
    container_errors,
    rollout_stuck,
    job_failed,
    service_without_endpoints,
    out_of_sync_fields,
    out_of_sync,
)


# Rules for objects reached by relations (issue 12): kept in their own module.
from .relation_findings import Rules as _RelationRules  # noqa: E402

RULES = RULES + _RelationRules(Finding).all()


def run_rules(snap: Snapshot) -> list[Finding]:
    """All findings, most specific first, without exact duplicates."""
    seen: set[str] = set()
    out = []
    for rule in RULES:
        try:
            found = rule(snap)
        except Exception:  # a rule tripping over an odd object must not cost the user the answer
            log.exception("finding rule %s failed", getattr(rule, "__name__", rule))
            continue
        for finding in found:
            if finding.message not in seen:
                seen.add(finding.message)
                out.append(finding)
    return out
