"""Kubernetes objects as the API serves them (JSON dicts): the pure helpers every stage shares, and
the :class:`Snapshot` that holds what one question gathered.

One version of each: the gatherer, the relation walkers, the finding rules and the renderer read
objects only through these, so they agree on what an object's group is, which Pods a selector
names, which Events are about an object and which log lines look like errors. Nothing here does
I/O.

Upstream facts relied on (docs/upstream-facts.md, "Kubernetes"): an object's API group is the part
of ``apiVersion`` before the ``/`` (none for the core group, ``v1``); core/v1 Events name their
object in ``involvedObject``, live in that object's namespace, and for a cluster-scoped object
(Node, Namespace, PersistentVolume) carry an empty ``involvedObject.namespace`` and live in
``default``; the kubelet records a Node's events with the node's *name* as ``involvedObject.uid``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import linear
from ..wire import RevisionAttachment
from .application import resources
from .base import Source
from .diff import ResourceDiff

# A log line that looks like a failure. One pattern for every reader of logs: the budget keeps these
# lines when it cuts a log, the findings quote them. "warning" is in it (a platform mismatch or a
# deprecation is often the cause); "can't" and "no such" are how busybox sh and Go report a
# missing file or binary ("exec /app: no such file or directory").
ERROR_LINE = linear.compile(
    r"(?i)\b(error|err|fatal|panic|exception|traceback|failed|failure|refused|denied|cannot|can't|unable|"
    r"timeout|timed out|killed|oom|segfault|no such|not found|invalid|unauthorized|forbidden|warning)\b"
)


def error_lines(text: str, limit: int = 3) -> list[str]:
    """The last ``limit`` error-looking lines of a log, else its last lines."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ERROR_LINE.search(ln)]
    return (errors or lines)[-limit:]


def log_evidence(
    snap: Snapshot, pod: Mapping[str, Any], container: str, lead: str, *, errors: bool = True
) -> tuple[str, tuple[str, ...]]:
    """What a finding quotes from a container's log (its crashed instance's, if any): a clause to
    append (``; <lead>: ...``) and the log as a source. ``errors``: its last error-looking lines;
    otherwise its last line."""
    for tail in snap.logs_of(pod, container)[:1]:
        lines = [ln.strip() for ln in tail.text.splitlines() if ln.strip()]
        quoted = error_lines(tail.text) if errors else lines[-1:]
        if quoted:
            return f"; {lead}: {' | '.join(quoted)}", (f"log {tail.label}",)
    return "", ()


# ---- identity ----------------------------------------------------------------------------------


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def uid(obj: Mapping[str, Any]) -> str:
    return str(
        meta(obj).get("uid") or f"{obj.get('kind')}/{meta(obj).get('namespace')}/{meta(obj).get('name')}"
    )


def label(obj: Mapping[str, Any]) -> str:
    ns = meta(obj).get("namespace")
    return f"{obj.get('kind', '?')} {ns + '/' if ns else ''}{meta(obj).get('name', '?')}"


def api_group(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` (the core group) -> ``""``."""
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def group_of(obj: Mapping[str, Any]) -> str:
    return api_group(str(obj.get("apiVersion", "")))


def owned_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    return any(str(r.get("uid")) == owner_uid for r in meta(obj).get("ownerReferences") or [])


def revision_of(replica_set: Mapping[str, Any]) -> int:
    """The Deployment revision a ReplicaSet holds (0 when not annotated)."""
    value = str((meta(replica_set).get("annotations") or {}).get("deployment.kubernetes.io/revision", "0"))
    return int(value) if value.isdigit() else 0


# ---- selectors ---------------------------------------------------------------------------------


def labels_selector(labels: Mapping[str, Any]) -> str:
    """A map of labels (a Service's or ReplicationController's selector, ``matchLabels``) as a
    ``labelSelector`` query value: ``k=v,k2=v2``."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def selector_string(selector: Mapping[str, Any] | None) -> str | None:
    """A LabelSelector (matchLabels + matchExpressions) as a ``labelSelector`` query value."""
    if not selector:
        return None
    parts = [labels_selector(selector.get("matchLabels") or {})] if selector.get("matchLabels") else []
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or None


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions, ANDed) applied locally to a namespace
    list, as the apiserver applies the ``labelSelector`` that ``gather.selector_string`` builds from
    it: the same terms (an expression with an unknown operator is left out there, so here too), and
    no term at all selects everything (that call then sent no selector)."""
    for key, value in ((selector or {}).get("matchLabels") or {}).items():
        if key not in labels or str(labels[key]) != str(value):
            return False
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op = str(expr.get("key")), expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        present = key in labels
        if op == "In" and not (present and str(labels[key]) in values):
            return False
        if op == "NotIn" and present and str(labels[key]) in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """A Service's or ReplicationController's selector (a plain map): every pair must match; an
    empty one selects everything, as the unselected list call it replaces did."""
    return all(k in labels and str(labels[k]) == str(v) for k, v in (selector or {}).items())


# ---- Pods --------------------------------------------------------------------------------------


def container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def container_spec(pod: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    spec = pod.get("spec") or {}
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        if c.get("name") == name:
            return dict(c)
    return {}


def pod_unhealthy(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Succeeded":
        return False
    if phase != "Running":
        return True
    return any(
        not cs.get("ready") or cs.get("restartCount", 0) > 0 for cs in status.get("containerStatuses") or []
    )


# ---- the Application's list --------------------------------------------------------------------


def missing(entry: Mapping[str, Any]) -> bool:
    """Argo CD lists the entry as Missing (no live object belongs to the Application)."""
    return ((entry.get("health") or {}).get("status")) == "Missing"


def entry_key(entry: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, name, namespace) of an ``Application.status.resources`` entry."""
    return (
        str(entry.get("group") or ""),
        str(entry.get("kind") or ""),
        str(entry.get("name") or ""),
        str(entry.get("namespace") or ""),
    )


def listed(app: Mapping[str, Any], group: str, kind: str, name: str) -> list[dict[str, Any]]:
    """The Application's entries for (group, kind, name), in any namespace."""
    return [e for e in resources(app) if entry_key(e)[:3] == (group, kind, name)]


# ---- events ------------------------------------------------------------------------------------


def about(event: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """Is this core/v1 Event about ``obj``?

    A matching uid settles it. Otherwise kind and name must match (and the API group, when both name
    one), and for a namespaced object its namespace: an Event about it lives there. A cluster-scoped
    object has no namespace to compare; its Events carry an empty ``involvedObject.namespace`` and
    live in ``default``. The uid alone never rules an Event out: the kubelet records a Node's events
    with the node's name as uid, and a re-created object's old Events still explain it.
    """
    involved = event.get("involvedObject") or {}
    if involved.get("uid") and involved.get("uid") == meta(obj).get("uid"):
        return True
    if involved.get("kind") != obj.get("kind") or involved.get("name") != meta(obj).get("name"):
        return False
    if (
        involved.get("apiVersion")
        and obj.get("apiVersion")
        and api_group(str(involved["apiVersion"])) != group_of(obj)
    ):
        return False
    namespace = meta(obj).get("namespace")
    if not namespace:
        return True
    return bool((involved.get("namespace") or meta(event).get("namespace")) == namespace)


def about_any(event: Mapping[str, Any], objects: Iterable[Mapping[str, Any]]) -> bool:
    return any(about(event, obj) for obj in objects)


# ---- what one question gathered ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogTail:
    namespace: str
    pod: str
    container: str
    previous: bool
    text: str
    source: Source = "kubernetes"  # "argocd": attached by the panel under the user's `logs, get`

    @property
    def label(self) -> str:
        which = " (previous instance)" if self.previous else ""
        return f"Pod {self.namespace}/{self.pod} container {self.container}{which}"


@dataclass
class Snapshot:
    """Everything gathered for one question (not yet redacted)."""

    app: dict[str, Any] | None = None
    target: dict[str, Any] | None = None  # the selected live object; None for the Application
    target_missing: bool = False
    owners: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)  # app-level: live problem objects
    related: list[dict[str, Any]] = field(default_factory=list)  # ReplicaSets, Jobs, Endpoints, PVCs
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    logs: list[LogTail] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # From the panel's attachments (Argo CD's API, the user's session), after the scope check:
    diffs: list[ResourceDiff] = field(default_factory=list)  # computed when rendering
    revisions: list[RevisionAttachment] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def objects(self) -> list[dict[str, Any]]:
        """Every object gathered, once (a selected Pod is also among the Pods)."""
        found = [o for o in (self.target,) if o is not None]
        seen: set[str] = set()
        out = []
        for obj in found + self.owners + self.problems + self.related + self.pods:
            if uid(obj) not in seen:
                seen.add(uid(obj))
                out.append(obj)
        return out

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects() if o.get("kind") == kind]

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        seen = {uid(e) for e in self.events}
        for event in events:
            if uid(event) not in seen:
                seen.add(uid(event))
                self.events.append(event)

    def events_about(self, obj: Mapping[str, Any], reasons: Iterable[str] = ()) -> list[Mapping[str, Any]]:
        """The Events about ``obj`` (with one of ``reasons``, when given), oldest first as gathered."""
        wanted = set(reasons)
        return [e for e in self.events if about(e, obj) and (not wanted or e.get("reason") in wanted)]

    def logs_of(self, pod: Mapping[str, Any], container: str | None = None) -> list[LogTail]:
        """The Pod's log tails (of one container, when given), the crashed instance's first."""
        found = [
            t
            for t in self.logs
            if t.pod == meta(pod).get("name")
            and t.namespace == meta(pod).get("namespace")
            and (container is None or t.container == container)
        ]
        return sorted(found, key=lambda t: not t.previous)


def not_served_note(group: str, kind: str, version: str | None, what: str) -> str:
    """The note for an object whose kind API discovery says the destination does not serve (a
    missing CRD, an API an old server lacks): often the whole answer, so said one way everywhere."""
    api = f"{group}/{version}" if group and version else group or version or "core"
    return f"the destination cluster does not serve {kind} ({api}); {what} cannot be read"
