"""What belongs to the Application, and may be shown in full. Decided before anything is gathered.

Three ways in, each narrower than "listed in the Application" (docs/security.md, "Scope"):

- **Listed**: an entry of ``Application.status.resources`` is read live only if its namespace is a
  destination the AppProject permits (cluster-scoped entries: a kind its cluster-resource whitelist
  permits) and it is not ``Missing``. Argo CD keeps *target* entries for manifests the project does
  not permit, and lists as ``Missing`` a name whose live object is not the Application's: a
  manifest in team A's Git naming ``team-b/payments`` must not make us read team B's Deployment.
- **Owned**: following ``ownerReferences`` (controller first, matching uid at every hop, within
  :data:`MAX_HOPS`) reaches an object that is in scope (Pod -> ReplicaSet -> Deployment).
- **Tracked**: Argo CD's own tracking names this Application (the ``argocd.argoproj.io/tracking-id``
  annotation or the instance label, as ``application.resourceTrackingMethod`` in argocd-cm says).

An object reached by a *relation* (a Service's selector, a Pod's volume) is shown in full only if
it is owned or tracked; otherwise it is only named and counted. Owner references come from the
cluster, so their kinds and names are validated like request names before they reach a URL.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from .. import linear
from ..errors import ApiError, ErrorCode
from ..wire import KIND_PATTERN, NAME_PATTERN
from .application import resources
from .base import ResourceRef
from .objects import api_group, entry_key, group_of

MAX_HOPS = 4
TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
DEFAULT_INSTANCE_LABEL = "app.kubernetes.io/instance"

# (group, kind, name, namespace) -> the object, or None when it does not exist.
Fetch = Callable[[str, str, str, str | None], Awaitable[dict[str, Any] | None]]
TrackingMethod = Literal["annotation", "label", "annotation+label"]


def _glob(pattern: str, value: str) -> bool:
    """Argo CD matches AppProject destinations with shell-style globs (``*``, ``?``, ``[...]``)."""
    return fnmatch.fnmatchcase(value, pattern)


@dataclass(frozen=True, slots=True)
class Tracking:
    """How Argo CD marks the objects an Application manages (argocd-cm)."""

    instance: str  # the Application's instance name: <name>, or <namespace>_<name> outside the control plane
    method: TrackingMethod | None = None  # None: argocd-cm unreadable, either mark counts
    label_key: str = DEFAULT_INSTANCE_LABEL

    @classmethod
    def for_application(
        cls, namespace: str, name: str, control_plane: str, argocd_cm: Mapping[str, Any] | None
    ) -> Tracking:
        data = (argocd_cm or {}).get("data") or {}
        method = str(data.get("application.resourceTrackingMethod") or "").strip()
        # Unset (or unreadable) means either mark counts: the default moved from the label to the
        # annotation in Argo CD 3.0, and we do not know the version.
        known = (
            cast(TrackingMethod, method) if method in ("annotation", "label", "annotation+label") else None
        )
        instance = name if namespace == control_plane else f"{namespace}_{name}"
        label_key = str(data.get("application.instanceLabelKey") or DEFAULT_INSTANCE_LABEL)
        return cls(instance=instance, method=known, label_key=label_key)

    def names_app(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.method in (None, "annotation", "annotation+label"):
            tracking_id = str((meta.get("annotations") or {}).get(TRACKING_ANNOTATION) or "")
            if tracking_id and tracking_id.split(":", 1)[0] == self.instance:
                return True
        if self.method in (None, "label"):
            # Argo CD truncates the label value to 63 characters.
            value = str((meta.get("labels") or {}).get(self.label_key) or "")
            if value and value == self.instance[:63]:
                return True
        return False


def _glob_or_not(pattern: str, value: str) -> bool:
    """Argo CD's globMatch with negation: ``!pattern`` matches every value the pattern does not."""
    if pattern.startswith("!"):
        return not _glob(pattern[1:], value)
    return _glob(pattern, value)


def _field_matches(pattern: str, value: str) -> bool:
    """Argo CD infers the missing one of server and name from its cluster list before it checks; we
    do not know it, so an unknown value matches only "*" (which would match whatever it is)."""
    if value:
        return _glob_or_not(pattern, value)
    return pattern == "*"


def _deny(pattern: str) -> bool:
    return pattern.startswith("!")


@dataclass(frozen=True, slots=True)
class Permissions:
    """The AppProject's destinations and cluster-scoped kinds, for this Application's destination.

    Namespaces follow Argo CD's ``isDestinationMatched``: permitted when some destination matches
    (server or name, and namespace; a ``!`` pattern matches what it does not name) and no deny
    pattern fails to match. Without a readable AppProject only the Application's own destination
    namespace is permitted.
    """

    destinations: tuple[tuple[str, str, str], ...]  # (server, name, namespace) patterns
    dest_server: str = ""
    dest_name: str = ""
    cluster_kinds: tuple[tuple[str, str], ...] = ()  # (group, kind) globs permitted cluster-wide
    cluster_kinds_denied: tuple[tuple[str, str], ...] = ()
    project: str = ""

    @classmethod
    def from_project(cls, project: Mapping[str, Any] | None, app: Mapping[str, Any]) -> Permissions:
        dest = (app.get("spec") or {}).get("destination") or {}
        server, name = str(dest.get("server") or ""), str(dest.get("name") or "")
        if project is None:
            own = str(dest.get("namespace") or "")
            exact = tuple(f"[{c}]" if c in "*?[!" else c for c in own)  # no glob can widen it
            return cls(
                destinations=((server, name, "".join(exact)),) if own else (),
                dest_server=server,
                dest_name=name,
                project=str((app.get("spec") or {}).get("project") or ""),
            )
        spec = project.get("spec") or {}
        destinations = tuple(
            (str(e.get("server") or ""), str(e.get("name") or ""), str(e.get("namespace") or ""))
            for e in spec.get("destinations") or []
            if isinstance(e, Mapping)
        )
        return cls(
            destinations=destinations,
            dest_server=server,
            dest_name=name,
            cluster_kinds=_kinds(spec.get("clusterResourceWhitelist")),
            cluster_kinds_denied=_kinds(spec.get("clusterResourceBlacklist")),
            project=str((project.get("metadata") or {}).get("name") or ""),
        )

    def namespace_permitted(self, namespace: str) -> bool:
        any_matched, no_deny_failed = False, True
        for server_p, name_p, ns_p in self.destinations:
            name_ok = _field_matches(name_p, self.dest_name)
            server_ok = _field_matches(server_p, self.dest_server)
            ns_ok = _glob_or_not(ns_p, namespace)
            if (server_ok or name_ok) and ns_ok:
                any_matched = True
            elif (
                (not name_ok and _deny(name_p))
                or (not server_ok and _deny(server_p))
                or (not ns_ok and _deny(ns_p))
            ):
                no_deny_failed = False
        return any_matched and no_deny_failed

    def cluster_kind_permitted(self, group: str, kind: str) -> bool:
        def hit(kinds: Sequence[tuple[str, str]]) -> bool:
            return any(_glob(g, group) and _glob(k, kind) for g, k in kinds)

        return hit(self.cluster_kinds) and not hit(self.cluster_kinds_denied)


def _kinds(entries: Any) -> tuple[tuple[str, str], ...]:
    return tuple(
        (str(e.get("group") or ""), str(e.get("kind") or ""))
        for e in entries or []
        if isinstance(e, Mapping) and e.get("kind")
    )


_KIND = linear.compile(KIND_PATTERN)
_NAME = linear.compile(NAME_PATTERN)


def _valid_owner_ref(ref: Mapping[str, Any]) -> bool:
    """Owner references come from the cluster: only well-formed kinds and names become URL parts."""
    api = str(ref.get("apiVersion", ""))
    return bool(
        _KIND.search(str(ref.get("kind", "")))
        and _NAME.search(str(ref.get("name", "")))
        and all(part and "/" not in part and ".." not in part for part in api.split("/", 1))
        and api.count("/") <= 1
    )


@dataclass(frozen=True, slots=True)
class Scoped:
    """The selected object and the owner chain that tied it to the Application (nearest first).

    ``obj`` is None when the listed entry is not read live; ``reason`` then says why.
    """

    obj: dict[str, Any] | None
    owners: tuple[dict[str, Any], ...] = ()
    reason: str | None = None


@dataclass
class ScopeRules:
    """The scope of one Application, for one request."""

    app: Mapping[str, Any]
    permissions: Permissions
    tracking: Tracking
    _listed: dict[tuple[str, str, str, str], Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in resources(self.app):
            self._listed[entry_key(entry)] = entry

    def entry(self, group: str, kind: str, name: str, namespace: str | None) -> Mapping[str, Any] | None:
        return self._listed.get((group, kind, name, namespace or ""))

    def unreadable_reason(self, entry: Mapping[str, Any]) -> str | None:
        """Why a listed entry is not read live, or None when it may be."""
        health = ((entry.get("health") or {}).get("status")) or ""
        namespace = str(entry.get("namespace") or "")
        project = self.permissions.project or "its AppProject"
        if health == "Missing":
            return "Argo CD lists it as Missing (no live object belongs to the Application)"
        if namespace and not self.permissions.namespace_permitted(namespace):
            return f"namespace {namespace} is not permitted by the destinations of AppProject {project}"
        if not namespace and not self.permissions.cluster_kind_permitted(
            str(entry.get("group") or ""), str(entry.get("kind") or "")
        ):
            return f"AppProject {project} does not permit this cluster-scoped kind"
        return None

    def readable(self, group: str, kind: str, name: str, namespace: str | None) -> bool:
        entry = self.entry(group, kind, name, namespace)
        return entry is not None and self.unreadable_reason(entry) is None

    def readable_entries(self, entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return [e for e in entries if self.unreadable_reason(e) is None]

    def _anchors(self, obj: Mapping[str, Any]) -> bool:
        """Is this object itself in scope (readable listed entry, or tracked)?"""
        meta = obj.get("metadata") or {}
        return self.readable(
            group_of(obj),
            str(obj.get("kind", "")),
            str(meta.get("name", "")),
            meta.get("namespace"),
        ) or self.tracking.names_app(obj)

    async def owner_chain(self, obj: Mapping[str, Any], fetch: Fetch) -> tuple[dict[str, Any], ...] | None:
        """The owners (nearest first) up to one in scope, or None when none is within MAX_HOPS."""
        owners: list[dict[str, Any]] = []
        current: Mapping[str, Any] = obj
        for _hop in range(MAX_HOPS):
            meta = current.get("metadata") or {}
            refs = [r for r in meta.get("ownerReferences") or [] if isinstance(r, Mapping)]
            refs.sort(key=lambda r: not r.get("controller"))  # the one Argo CD's tree follows first
            parent = None
            for ref in refs:
                if not _valid_owner_ref(ref):
                    continue
                group, kind, name = api_group(str(ref["apiVersion"])), str(ref["kind"]), str(ref["name"])
                candidate = await fetch(group, kind, name, meta.get("namespace"))
                if candidate is None or (candidate.get("metadata") or {}).get("uid") != ref.get("uid"):
                    continue  # a stale reference to a deleted or re-created owner proves nothing
                candidate.setdefault("apiVersion", ref["apiVersion"])
                candidate.setdefault("kind", kind)
                if self._anchors(candidate):
                    return (*owners, candidate)
                parent = parent or candidate
            if parent is None:
                return None
            owners.append(parent)
            current = parent
        return None

    async def related_in_scope(self, obj: Mapping[str, Any], fetch: Fetch) -> bool:
        """May an object reached by a relation (selector, reference) be shown in full?"""
        return self.tracking.names_app(obj) or await self.owner_chain(obj, fetch) is not None

    async def partition(
        self, objects: Sequence[dict[str, Any]], fetch: Fetch
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(in scope, not in scope) for objects reached by a relation, checked concurrently."""
        verdicts = await asyncio.gather(*(self.related_in_scope(o, fetch) for o in objects))
        mine = [o for o, ok in zip(objects, verdicts, strict=True) if ok]
        others = [o for o, ok in zip(objects, verdicts, strict=True) if not ok]
        return mine, others


def statefulset_claim(pvc: Mapping[str, Any], sets: Iterable[Mapping[str, Any]]) -> bool:
    """A PVC named ``<template>-<statefulset>-<ordinal>`` of one of ``sets`` (its claims carry no
    owner reference; Argo CD relates them to the StatefulSet by that name)."""
    if pvc.get("kind") != "PersistentVolumeClaim":
        return False
    name = str((pvc.get("metadata") or {}).get("name", ""))
    for sts in sets:
        sts_meta = sts.get("metadata") or {}
        if sts_meta.get("namespace") != (pvc.get("metadata") or {}).get("namespace"):
            continue
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            prefix = f"{(template.get('metadata') or {}).get('name')}-{sts_meta.get('name')}-"
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                return True
    return False


def refuse(ref: ResourceRef, app_label: str) -> ApiError:
    return ApiError(
        ErrorCode.RESOURCE_NOT_IN_APPLICATION, f"{ref.kind} {ref.name} is not part of application {app_label}"
    )


async def check_scope(rules: ScopeRules, ref: ResourceRef, fetch: Fetch, app_label: str) -> Scoped:
    """Return the object (and owners) if in scope; raise 403 ``resource_not_in_application`` if not.

    ``fetch`` errors (unreachable, forbidden) propagate: the caller reports that scope could not
    be verified and gathers nothing.
    """
    entry = rules.entry(ref.group, ref.kind, ref.name, ref.namespace)
    if entry is not None:
        reason = rules.unreadable_reason(entry)
        if reason is not None:
            return Scoped(None, reason=reason)
        return Scoped(await fetch(ref.group, ref.kind, ref.name, ref.namespace))
    obj = await fetch(ref.group, ref.kind, ref.name, ref.namespace)
    if obj is None:
        raise refuse(ref, app_label)
    obj.setdefault("kind", ref.kind)
    if rules.tracking.names_app(obj):
        return Scoped(obj)
    owners = await rules.owner_chain(obj, fetch)
    if owners is None:
        raise refuse(ref, app_label)
    return Scoped(obj, owners)
