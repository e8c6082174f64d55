"""Turn a gathered snapshot into redacted sections, and fitted sections into the model's document.

Sections come out in priority order: findings, Application summary, the synced revision's commit
(attached from Argo CD), the diff from Git (attached), the object's status, related objects, events,
logs, spec. Every string passes through the redactor first, and each section carries its own
redaction count and source (``kubernetes`` or ``argocd``) for the ``context`` event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ..wire import RevisionAttachment
from .application import summarize
from .base import ContextItem
from .budget import Fitted, Section
from .diff import ResourceDiff
from .findings import Finding
from .objects import LogTail, Snapshot, container_statuses, label, meta
from .redact import Redactor
from .relations import facts_of, relation_line
from .tokens import estimate_tokens

# Metadata a reader needs; the rest (uid, resourceVersion, selfLink, generation...) is noise.
_META_KEYS = (
    "name",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
)
_NOISY_STATUS_KEYS = ("containerID", "imageID")
_NOT_CONTENT = frozenset({"apiVersion", "kind", "metadata", "status"})
# Defaults the apiserver fills in; they cost tokens and never explain a failure.
_NOISY_SPEC_KEYS = frozenset(
    {
        "terminationMessagePath",
        "terminationMessagePolicy",
        "dnsPolicy",
        "schedulerName",
        "enableServiceLinks",
        "preemptionPolicy",
        "priority",
        "terminationGracePeriodSeconds",
        "revisionHistoryLimit",
        "creationTimestamp",
    }
)
_DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _slim_spec(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if key in _NOISY_SPEC_KEYS:
                continue
            if key == "tolerations" and isinstance(item, list):
                item = [
                    t for t in item if not (isinstance(t, Mapping) and t.get("key") in _DEFAULT_TOLERATIONS)
                ]
            item = _slim_spec(item)
            if item in ({}, [], None):
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [_slim_spec(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (config files, scripts) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _yaml(value: Any) -> str:
    return yaml.dump(
        value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=240, allow_unicode=True
    ).rstrip()


def _slim_meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    m = meta(obj)
    out = {k: m[k] for k in _META_KEYS if m.get(k)}
    if "ownerReferences" in out:
        out["ownerReferences"] = [f"{r.get('kind')}/{r.get('name')}" for r in out["ownerReferences"]]
    return out


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if k not in _NOISY_STATUS_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _one_line(obj: Mapping[str, Any]) -> str:
    """A related object in one line: what a human would glance at."""
    kind, status, spec = obj.get("kind"), obj.get("status") or {}, obj.get("spec") or {}
    if kind == "Pod":
        parts = [f"phase {status.get('phase', '?')}"]
        if status.get("reason"):
            parts.append(f"reason {status['reason']}")
        if spec.get("nodeName"):
            parts.append(f"node {spec['nodeName']}")
        for cs in container_statuses(obj):
            state = cs.get("state") or {}
            which = next(iter(state), "unknown")
            detail = (state.get(which) or {}).get("reason") or ""
            last = (cs.get("lastState") or {}).get("terminated") or {}
            text = f"container {cs.get('name')} {which}{' ' + detail if detail else ''}"
            text += f", ready {str(cs.get('ready', False)).lower()}, restarts {cs.get('restartCount', 0)}"
            if last:
                text += f", last exit {last.get('exitCode')} {last.get('reason', '')}".rstrip()
            parts.append(text)
        return f"{label(obj)}: " + "; ".join(parts)
    if kind in ("ReplicaSet", "StatefulSet", "Deployment", "DaemonSet"):
        rev = (meta(obj).get("annotations") or {}).get("deployment.kubernetes.io/revision")
        text = (
            f"{label(obj)}: desired {spec.get('replicas', status.get('desiredNumberScheduled', '?'))}, "
            f"ready {status.get('readyReplicas', status.get('numberReady', 0))}"
        )
        images = [
            c.get("image") for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        ]
        if images:
            text += f", images {', '.join(str(i) for i in images)}"
        for condition in status.get("conditions") or []:
            if condition.get("status") == "True" and condition.get("type") == "ReplicaFailure":
                text += f", ReplicaFailure: {condition.get('message', '')}"
        return text + (f" (revision {rev})" if rev else "")
    if kind == "Endpoints":
        ready = sum(len(s.get("addresses") or []) for s in obj.get("subsets") or [])
        not_ready = sum(len(s.get("notReadyAddresses") or []) for s in obj.get("subsets") or [])
        return f"{label(obj)}: {ready} ready address(es), {not_ready} not ready"
    if kind == "PersistentVolumeClaim":
        return (
            f"{label(obj)}: phase {status.get('phase', '?')}, storageClass "
            f"{spec.get('storageClassName') or 'default'}, requests {(spec.get('resources') or {}).get('requests')}"
        )
    if kind == "Job":
        return (
            f"{label(obj)}: active {status.get('active', 0)}, succeeded {status.get('succeeded', 0)}, "
            f"failed {status.get('failed', 0)}"
        )
    return relation_line(obj) or label(obj)  # kinds reached by relations (relations.py)


def _event_line(event: Mapping[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    when = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp", "")
    )
    count = event.get("count") or 1
    return (
        f"{when} {event.get('type', 'Normal')} {event.get('reason', '')} "
        f"{involved.get('kind', '')}/{involved.get('name', '')} x{count}: {event.get('message', '')}"
    ).strip()


def _event_order(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp", "")
    )


def build_sections(snap: Snapshot, findings: Sequence[Finding], subject: str) -> list[Section]:
    """Every section, in priority order (the budget fills them in this order)."""
    return [
        _findings_section(findings, subject),
        *_application_section(snap),
        *_revision_sections(snap),
        *(_diff_section(diff) for diff in snap.diffs),
        *(_status_section(obj) for obj in _targets(snap)),
        *_related_section(snap, subject),
        *_relations_section(snap, subject),
        *_events_section(snap, subject),
        *(
            _log_section(tail)
            for tail in sorted(snap.logs, key=lambda t: (t.pod, t.container, not t.previous))
        ),
        *_target_spec_section(snap),
        *_owner_spec_section(snap),
    ]


def _targets(snap: Snapshot) -> list[dict[str, Any]]:
    """What the question is about: the selected object, else the Application's problem resources."""
    return [snap.target] if snap.target is not None else snap.problems


def _findings_section(findings: Sequence[Finding], subject: str) -> Section:
    red = Redactor()
    body = (
        "\n".join(red.text(f.render()) for f in findings)
        if findings
        else "- no known failure pattern matched"
    )
    return Section("findings", subject, "Findings (deterministic checks)", body, red.count, "head")


def _application_section(snap: Snapshot) -> list[Section]:
    if snap.app is None:
        return []
    red = Redactor()
    return [
        Section(
            "application",
            f"Application {meta(snap.app).get('namespace')}/{meta(snap.app).get('name')}",
            "Argo CD Application",
            red.text(_with_commits(summarize(snap.app), snap.revisions)),
            red.count,
            "head",
        )
    ]


def _revision_sections(snap: Snapshot) -> list[Section]:
    if snap.app is None:
        return []
    revisions = sorted(snap.revisions, key=lambda r: (r.source_index or 0, r.revision))
    return [_revision_section(revision, meta(snap.app)) for revision in revisions]


def _status_section(obj: Mapping[str, Any]) -> Section:
    red = Redactor()
    # Redact only what this section shows, so its count is its own.
    clean = red.obj(obj if obj.get("kind") == "Secret" else {k: v for k, v in obj.items() if k != "spec"})
    doc: dict[str, Any] = {"metadata": _slim_meta(clean)}
    if clean.get("status"):
        doc["status"] = _strip(clean["status"])
    if obj.get("kind") == "Secret":
        doc = {k: v for k, v in clean.items() if k != "apiVersion"}
    return Section("status", label(obj), f"Live status of {label(obj)}", _yaml(doc), red.count, "head")


def _related_section(snap: Snapshot, subject: str) -> list[Section]:
    related = [o for o in snap.owners + snap.related + snap.pods if o is not snap.target]
    if not related:
        return []
    red = Redactor()
    lines = [red.text(_one_line(o)) for o in related]
    title = "Related objects (owners, children, Pods)"
    return [Section("related", subject, title, "\n".join(lines), red.count, "head")]


def _relations_section(snap: Snapshot, subject: str) -> list[Section]:
    """What the relation walkers established (relations.py)."""
    facts = facts_of(snap)
    if not facts.lines:
        return []
    red = Redactor()
    title = "Relations (selectors, references, volumes, nodes, hooks, child Applications)"
    body = "\n".join(red.text(line) for line in facts.lines)
    return [Section("relations", subject, title, body, red.count, "head")]


def _events_section(snap: Snapshot, subject: str) -> list[Section]:
    if not snap.events:
        return []
    red = Redactor()
    events = sorted(snap.events, key=_event_order)
    # Warnings matter most; keep them last so a tail cut keeps them and the newest.
    events = [e for e in events if e.get("type") != "Warning"] + [
        e for e in events if e.get("type") == "Warning"
    ]
    lines = [red.text(_event_line(e)) for e in events]
    return [Section("events", subject, f"Events ({len(lines)})", "\n".join(lines), red.count, "tail")]


def _target_spec_section(snap: Snapshot) -> list[Section]:
    """The selected object's spec (or, for kinds without one, its content); never a Secret's."""
    obj = snap.target
    if obj is None or obj.get("kind") == "Secret":
        return []
    red = Redactor()
    shown = {k: v for k, v in obj.items() if k not in _NOT_CONTENT}
    if "binaryData" in shown:  # opaque bytes: names only
        shown["binaryData"] = sorted(shown["binaryData"] or {})
    clean = red.obj({"kind": obj.get("kind"), **shown})
    clean.pop("kind", None)
    # Kinds without a spec (ConfigMap data, Endpoints subsets, RBAC rules) show their content.
    content = clean.pop("spec", None) or {}
    if isinstance(content, dict):
        content = {**content, **clean}
    if not content:
        return []
    title = "Spec" if "spec" in obj else "Content"
    return [
        Section("spec", label(obj), f"{title} of {label(obj)}", _yaml(_slim_spec(content)), red.count, "head")
    ]


def _owner_spec_section(snap: Snapshot) -> list[Section]:
    """The spec of the outermost owner (the Deployment of a Pod), where a fix is usually made."""
    out = []
    for owner in snap.owners[-1:]:
        red = Redactor()
        clean = red.obj(owner)
        if clean.get("spec"):
            body = _yaml(_slim_spec(clean["spec"]))
            out.append(Section("spec", label(owner), f"Spec of {label(owner)}", body, red.count, "head"))
    return out


def _log_section(tail: LogTail) -> Section:
    red = Redactor()
    text = red.text(tail.text.rstrip("\n"))
    via = " (from Argo CD, read under the user's `logs, get`)" if tail.source == "argocd" else ""
    return Section(
        "logs", tail.label, f"Log tail of {tail.label}{via}", text, red.count, "errors", source=tail.source
    )


def _with_commits(summary: str, revisions: Sequence[RevisionAttachment]) -> str:
    """The commit's subject line next to the revision it belongs to (the full message follows in
    its own section)."""
    if not revisions:
        return summary
    lines = summary.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("Sync status:")), len(lines) - 1)
    commits = []
    for revision in revisions:
        subject = (revision.message.strip().splitlines() or [""])[0][:200]
        by = ", ".join(p for p in (revision.author, revision.date or "") if p)
        commits.append(f"  commit {revision.revision[:12]}: {subject!r}" + (f" ({by})" if by else ""))
    return "\n".join(lines[: at + 1] + commits + lines[at + 1 :])


def _revision_section(revision: RevisionAttachment, app_meta: Mapping[str, Any]) -> Section:
    """The commit behind the synced revision: its message usually says what changed."""
    red = Redactor()
    which = f" (source {revision.source_index})" if revision.source_index is not None else ""
    lines = [f"Revision {revision.revision}{which}"]
    if revision.author:
        lines.append(f"Author: {red.text(revision.author)}")
    if revision.date:
        lines.append(f"Date: {red.text(revision.date)}")
    if revision.tags:
        lines.append("Tags: " + ", ".join(red.text(t) for t in revision.tags))
    if revision.message:
        lines.append("Message:")
        lines.extend(f"  {line}" for line in red.text(revision.message.strip()).splitlines())
    ref = (
        f"Revision {revision.revision[:12]} of Application {app_meta.get('namespace')}/{app_meta.get('name')}"
    )
    return Section(
        "revision",
        ref,
        "Synced revision (commit from Argo CD)",
        "\n".join(lines),
        red.count,
        "head",
        source="argocd",
    )


def _diff_section(diff: ResourceDiff) -> Section:
    """The changed fields as a unified diff, live (cluster) -> desired (Git)."""
    what = {
        "added": "in Git, not in the cluster: a sync creates it",
        "removed": "in the cluster, no longer in Git: a sync with pruning deletes it",
        "modified": "changed fields only",
    }.get(diff.state, "")
    body = diff.unified or "(no field differs)"
    if diff.truncated:
        body += "\n[... more changed fields not shown ...]"
    return Section(
        "diff",
        diff.ref,
        f"Diff of {diff.ref} from Git ({what}; from Argo CD)",
        body,
        diff.redactions,
        "head",
        truncated=diff.truncated,
        source="argocd",
    )


def assemble(header: str, fitted: Fitted, notes: Sequence[str]) -> tuple[str, tuple[ContextItem, ...]]:
    """The document the model reads and the items the user is shown, which add up to it."""
    parts = [header]
    items: list[ContextItem] = []
    for section in fitted.sections:
        parts.append(section.text)
        items.append(
            ContextItem(
                section.kind,
                section.ref,
                section.tokens,
                section.truncated,
                section.redactions,
                section.source,
                section.body if section.kind == "diff" else None,
            )
        )
    all_notes = list(notes)
    if fitted.omitted:
        all_notes.append(
            "left out to fit the token budget: " + ", ".join(f"{s.kind} of {s.ref}" for s in fitted.omitted)
        )
    if all_notes:
        note_text = "## Could not be read or shown\n" + "\n".join(f"- {n}" for n in all_notes) + "\n"
        parts.append(note_text)
        items.append(ContextItem("note", "; ".join(all_notes)[:300], estimate_tokens(note_text)))
    # the header belongs to the first item so the items' tokens add up to the text's
    text = "\n".join(parts)
    if items:
        first = items[0]
        items[0] = ContextItem(
            first.kind,
            first.ref,
            first.tokens + estimate_tokens(header + "\n"),
            first.truncated,
            first.redactions,
            first.source,
            first.detail,
        )
    return text, tuple(items)
