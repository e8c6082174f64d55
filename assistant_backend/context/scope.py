"""Is the selected resource part of the Application? Decided before anything is gathered.

A resource is in scope when ``Application.status.resources`` lists it, or when following its
``ownerReferences`` (matching uid at every hop, in the same namespace) reaches a listed resource
within :data:`MAX_HOPS` (Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob). Reading the
selected object and its owners' metadata is the check itself; nothing is *gathered* for the model
unless it passes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ApiError, ErrorCode
from .application import resources
from .base import ResourceRef

MAX_HOPS = 4

# (group, kind, name, namespace) -> the object, or None when it does not exist.
Fetch = Callable[[str, str, str, str | None], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class Scoped:
    """The selected object and the owner chain that tied it to the Application (nearest first)."""

    obj: dict[str, Any] | None  # None only when the listed resource does not exist (health Missing)
    owners: tuple[dict[str, Any], ...] = ()
    listed: bool = True


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def listed(app: Mapping[str, Any], group: str, kind: str, name: str, namespace: str | None) -> bool:
    ns = namespace or ""
    return any(
        (r.get("group") or "") == group
        and r.get("kind") == kind
        and r.get("name") == name
        and (r.get("namespace") or "") == ns
        for r in resources(app)
    )


def refuse(ref: ResourceRef, app_label: str) -> ApiError:
    return ApiError(
        ErrorCode.RESOURCE_NOT_IN_APPLICATION, f"{ref.kind} {ref.name} is not part of application {app_label}"
    )


async def check_scope(app: Mapping[str, Any], ref: ResourceRef, fetch: Fetch, app_label: str) -> Scoped:
    """Return the object (and owners) if in scope; raise 403 ``resource_not_in_application`` if not.

    ``fetch`` errors (unreachable, forbidden) propagate: the caller reports that scope could not
    be verified and gathers nothing.
    """
    if listed(app, ref.group, ref.kind, ref.name, ref.namespace):
        return Scoped(await fetch(ref.group, ref.kind, ref.name, ref.namespace), listed=True)
    obj = await fetch(ref.group, ref.kind, ref.name, ref.namespace)
    if obj is None:
        raise refuse(ref, app_label)
    owners: list[dict[str, Any]] = []
    current = obj
    for _hop in range(MAX_HOPS):
        namespace = (current.get("metadata") or {}).get("namespace")
        refs = [
            r for r in (current.get("metadata") or {}).get("ownerReferences") or [] if isinstance(r, Mapping)
        ]
        # The controller owner first: it is the one Argo CD's resource tree follows.
        refs.sort(key=lambda r: not r.get("controller"))
        parent = None
        for owner_ref in refs:
            group = group_of(str(owner_ref.get("apiVersion", "")))
            kind, name = str(owner_ref.get("kind", "")), str(owner_ref.get("name", ""))
            candidate = await fetch(group, kind, name, namespace)
            if candidate is None or (candidate.get("metadata") or {}).get("uid") != owner_ref.get("uid"):
                continue  # a stale reference to a deleted or re-created owner proves nothing
            if listed(app, group, kind, name, namespace):
                owners.append(candidate)
                return Scoped(obj, tuple(owners), listed=False)
            parent = parent or candidate
        if parent is None:
            break
        owners.append(parent)
        current = parent
    raise refuse(ref, app_label)
