"""Relations: what an SRE follows one and two hops from what was gathered, and who may see it.

The gatherer reads the selected object, its owners and children. From there, the cause of an incident
often sits on a *related* object: the Pods a Service selector should have matched, the Service an
Ingress routes to and the port its Pods really listen on, the ConfigMaps / Secrets / PVCs /
ServiceAccount a Pod references, the Pods that mount a claim and the volume behind it, the Node a Pod
runs on, the hook Jobs of the last sync and their Pods, child Applications, an HPA's target, the
previous ReplicaSet's Pod. ``relation_walker.py`` walks them; this module holds the scope decisions,
the facts the walk establishes, and the helpers that keep related objects to the fields that matter.

Scope (what may be *read in full*):

- An object reached by **listing or ownership** is in scope as before (``scope.py``).
- An object reached by a **relation** (selector, reference, event) is shown only if
  ``in_scope_by_relation(obj)`` says so; otherwise it is only named and counted. The predicate is
  supplied by the caller; :func:`make_in_scope_by_relation` is the local one (listed by the
  Application, owned by an in-scope object, or Argo CD's tracking names this Application) and the
  only place that decides, so it can be swapped.
- Secrets are never read: a reference names the Secret and the keys the Pod asks for, never values.
  ConfigMaps that are read show key names only.
- Nodes and PersistentVolumes are cluster-scoped and shared: only the fields that explain the Pod
  or the claim are kept (labels such as arch/zone, taints, conditions; capacity, access modes,
  node affinity), and a PersistentVolume only when its ``claimRef`` is the in-scope claim.

Upstream facts relied on (docs/upstream-facts.md, "Argo CD API" and "Kubernetes"): Argo CD marks
what it manages with the ``argocd.argoproj.io/tracking-id`` annotation
(``<instance>:<group>/<kind>:<namespace>/<name>``) or the ``app.kubernetes.io/instance`` label, where
the instance name is the Application's name, or ``<namespace>_<name>`` for an Application outside
the control-plane namespace; hook resources are listed only in ``operationState.syncResult``; a
StatefulSet's claims are named ``<template>-<statefulset>-<ordinal>`` and carry no owner reference
(Argo CD's resource tree relates them by that name).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .objects import Snapshot, group_of, label, labels_selector, meta, uid
from .scope import ScopeRules, statefulset_claim

InScope = Callable[[Mapping[str, Any]], bool]


# Node fields that explain scheduling or exec-format failures; the rest of a Node is not ours.
_NODE_LABELS = (
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/hostname",
)
_NODE_PROBLEM_CONDITIONS = {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}


def make_in_scope_by_relation(rules: ScopeRules, snap: Snapshot) -> InScope:
    """The scope predicate for objects reached by a relation (docs/security.md, "Scope").

    In scope: a listed entry the scope rules let us read (AppProject destination, not Missing);
    tracked as this Application's (``rules.tracking``: annotation or label, as argocd-cm says);
    owned (``ownerReferences`` uid) by an object already gathered in scope; or a StatefulSet claim
    of an in-scope StatefulSet. Everything else is only named and counted.
    """

    def in_scope_by_relation(obj: Mapping[str, Any]) -> bool:
        name, namespace = str(meta(obj).get("name", "")), meta(obj).get("namespace")
        if rules.readable(
            group_of(obj), str(obj.get("kind", "")), name, namespace
        ) or rules.tracking.names_app(obj):
            return True
        gathered = snap.objects()
        known = {uid(o) for o in gathered}
        if any(str(r.get("uid")) in known for r in meta(obj).get("ownerReferences") or []):
            return True
        return statefulset_claim(obj, (o for o in gathered if o.get("kind") == "StatefulSet"))

    return in_scope_by_relation


# ---- what the walkers add to the snapshot ------------------------------------------------------


@dataclass
class RelationFacts:
    """Facts the walkers established, rendered as the "Relations" section (one line each)."""

    lines: list[str] = field(default_factory=list)
    nearest: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # Service uid -> Pods
    config_keys: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)  # (kind,ns,name)
    missing_refs: list[tuple[str, str, str, str]] = field(default_factory=list)  # kind, ns, name, by
    hook_objects: list[dict[str, Any]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)  # child Applications
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # node name -> slim Node
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # claim uid -> slim PV
    out_of_scope: dict[str, list[str]] = field(default_factory=dict)  # relation -> names

    def add(self, line: str) -> None:
        if line not in self.lines:
            self.lines.append(line)

    def skipped(self, relation: str, obj: Mapping[str, Any]) -> None:
        names = self.out_of_scope.setdefault(relation, [])
        if label(obj) not in names:
            names.append(label(obj))


def facts_of(snap: Snapshot) -> RelationFacts:
    """The snapshot's relation facts (created on first use)."""
    facts = getattr(snap, "relation_facts", None)
    if not isinstance(facts, RelationFacts):
        facts = RelationFacts()
        snap.relation_facts = facts  # type: ignore[attr-defined]
    return facts


def slim_node(node: Mapping[str, Any]) -> dict[str, Any]:
    labels = meta(node).get("labels") or {}
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    conditions = [
        c
        for c in status.get("conditions") or []
        if (c.get("type") == "Ready" and c.get("status") != "True")
        or (c.get("type") in _NODE_PROBLEM_CONDITIONS and c.get("status") == "True")
    ]
    return {
        "kind": "Node",
        "metadata": {
            "name": meta(node).get("name"),
            "labels": {k: labels[k] for k in _NODE_LABELS if k in labels},
        },
        "spec": {"taints": list((node.get("spec") or {}).get("taints") or [])},
        "status": {
            "architecture": info.get("architecture"),
            "operatingSystem": info.get("operatingSystem"),
            "conditions": [
                {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k)} for c in conditions
            ],
            "allocatable": dict(status.get("allocatable") or {}),
            "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        },
    }


def slim_volume(pv: Mapping[str, Any]) -> dict[str, Any]:
    spec = pv.get("spec") or {}
    return {
        "kind": "PersistentVolume",
        "metadata": {"name": meta(pv).get("name")},
        "spec": {
            k: spec.get(k)
            for k in ("capacity", "accessModes", "storageClassName", "nodeAffinity", "volumeMode")
            if spec.get(k)
        },
        "status": {k: v for k, v in (pv.get("status") or {}).items() if k in ("phase", "message", "reason")},
    }


def labels_text(labels: Mapping[str, Any]) -> str:
    """A Pod's labels to show, sorted, without the per-ReplicaSet hash."""
    return labels_selector({k: v for k, v in sorted(labels.items()) if k != "pod-template-hash"})


def pod_references(pod: Mapping[str, Any]) -> list[tuple[str, str, str | None, bool]]:
    """(kind, name, key or None, optional) of every ConfigMap / Secret / PVC / ServiceAccount a Pod
    names, in spec order."""
    spec = pod.get("spec") or {}
    out: list[tuple[str, str, str | None, bool]] = []
    for container in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            for kind, ref_key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = source.get(ref_key)
                if ref and ref.get("name"):
                    out.append((kind, str(ref["name"]), str(ref.get("key") or ""), bool(ref.get("optional"))))
        for env_from in container.get("envFrom") or []:
            for kind, ref_key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                ref = env_from.get(ref_key)
                if ref and ref.get("name"):
                    out.append((kind, str(ref["name"]), None, bool(ref.get("optional"))))
    for volume in spec.get("volumes") or []:
        out.extend(_volume_references(volume, name_field="secretName"))
        if (volume.get("persistentVolumeClaim") or {}).get("claimName"):
            out.append(
                ("PersistentVolumeClaim", str(volume["persistentVolumeClaim"]["claimName"]), None, False)
            )
        for source in (volume.get("projected") or {}).get("sources") or []:
            out.extend(_volume_references(source, name_field="name"))
    if spec.get("serviceAccountName"):
        out.append(("ServiceAccount", str(spec["serviceAccountName"]), None, False))
    return list(dict.fromkeys(out))


def _volume_references(
    source: Mapping[str, Any], *, name_field: str
) -> list[tuple[str, str, str | None, bool]]:
    """The ConfigMap and Secret a volume (or one source of a projected volume) names. A volume names
    its Secret in ``secretName``, a projected source in ``name`` (``name_field``)."""
    out: list[tuple[str, str, str | None, bool]] = []
    for kind, key, name_key in (("ConfigMap", "configMap", "name"), ("Secret", "secret", name_field)):
        ref = source.get(key) or {}
        if ref.get(name_key):
            out.append((kind, str(ref[name_key]), None, bool(ref.get("optional"))))
    return out


def nearest_pods(
    selector: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """Pods ranked by how many of the selector's labels they carry (keys and values), best first;
    only those sharing at least one key."""
    scored = []
    for pod in pods:
        labels = meta(pod).get("labels") or {}
        same_key = sum(1 for k in selector if k in labels)
        same_value = sum(1 for k, v in selector.items() if labels.get(k) == v)
        if same_key:
            scored.append((-(same_value * 2 + same_key), label(pod), dict(pod)))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in scored[:limit]]


def _port_numbers(pod: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    out = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("containerPort"):
                out.append(
                    (str(container.get("name")), str(port.get("name") or ""), int(port["containerPort"]))
                )
    return out


def port_lines(svc: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """Service ports next to the container ports of its Pods: what a 502 hides."""
    pods = list(pods)
    lines = []
    for port in (svc.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        declared = sorted(
            {f"{c}:{n + '=' if n else ''}{p}" for pod in pods for c, n, p in _port_numbers(pod)}
        )
        lines.append(
            f"{label(svc)} port {port.get('port')} -> targetPort {target}; container ports of its Pods: "
            + (", ".join(declared) if declared else "none declared")
        )
    return lines


def dedupe_logs(snap: Snapshot) -> None:
    """The gatherer and the walkers may read the same container's log; keep it once."""
    seen: set[tuple[str, str, str, bool]] = set()
    kept = []
    for tail in snap.logs:
        key = (tail.namespace, tail.pod, tail.container, tail.previous)
        if key not in seen:
            seen.add(key)
            kept.append(tail)
    snap.logs[:] = kept


def hpa_conditions(hpa: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """autoscaling/v2 keeps conditions in status; autoscaling/v1 (what an apiserver serves as the
    preferred version up to 1.22) keeps them as JSON in an annotation."""
    conditions = list((hpa.get("status") or {}).get("conditions") or [])
    if conditions:
        return conditions
    raw = (meta(hpa).get("annotations") or {}).get("autoscaling.alpha.kubernetes.io/conditions")
    try:
        parsed = json.loads(str(raw)) if raw else []
    except ValueError:
        return []
    return [c for c in parsed if isinstance(c, Mapping)] if isinstance(parsed, list) else []


def relation_line(obj: Mapping[str, Any]) -> str | None:
    """One line for kinds that reach the "related" list only through a relation."""
    kind, spec, status = obj.get("kind"), obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Service":
        ports = ", ".join(
            f"{p.get('port')}->{p.get('targetPort', p.get('port'))}{'/' + p['name'] if p.get('name') else ''}"
            for p in spec.get("ports") or []
        )
        selector = labels_selector(spec.get("selector") or {}) or "none"
        return f"{label(obj)}: type {spec.get('type', 'ClusterIP')}, selector {selector}, ports {ports or 'none'}"
    if kind == "HorizontalPodAutoscaler":
        conditions = "; ".join(
            f"{c.get('type')}={c.get('status')} {c.get('reason', '')}: {c.get('message', '')}"
            for c in hpa_conditions(obj)
        )
        return (
            f"{label(obj)}: replicas {status.get('currentReplicas', '?')}/{spec.get('maxReplicas', '?')}"
            + (f"; {conditions}" if conditions else "")
        )
    if kind in ("Deployment", "StatefulSet") and spec.get("template"):
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        return f"{label(obj)}: images {', '.join(str(c.get('image')) for c in containers)}"
    return None
