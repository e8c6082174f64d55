"""The diff between a resource's desired state (Git) and its live state, as Argo CD would show it.

Input: the target and live objects the panel read from Argo CD's ``managed-resources`` (already
redacted by the caller, the same way on both sides). Output: the changed fields only, as a unified
diff of canonical YAML (sorted keys), plus one short phrase per change for the findings.

What is left out, as Argo CD leaves it out of its diff (docs/upstream-facts.md, "Argo CD API"):
``status``, ``metadata.managedFields``, ``resourceVersion``, ``uid``, ``generation``,
``creationTimestamp``, ``selfLink``, the ``kubectl.kubernetes.io/last-applied-configuration``
annotation and the ``deployment.kubernetes.io/revision`` annotation the controller sets.

Comparison follows apply semantics: a field the desired state does not set is not compared (the
apiserver and controllers fill in defaults), except items of named lists (containers, env, ports,
volumes...), which are matched by ``name`` so a removed env var or container shows as removed.
Unnamed lists compare as a whole. Everything is bounded: at most :data:`MAX_CHANGES` changes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

MAX_CHANGES = 200
MAX_DEPTH = 40

_IGNORED_METADATA = frozenset(
    {"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"}
)
_IGNORED_ANNOTATIONS = frozenset(
    {"kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision"}
)

PathPart = str | tuple[str, str]  # a mapping key, or ("name", value) for an item of a named list
Path = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Change:
    path: Path
    live: Any  # None: absent in the cluster
    target: Any  # None: absent in Git

    @property
    def field(self) -> str:
        return path_text(self.path)


@dataclass(frozen=True, slots=True)
class ResourceDiff:
    ref: str  # "Deployment shop/web (apps/v1)"
    kind: str
    state: str  # "modified", "added" (in Git, not live), "removed" (live, not in Git), "same"
    changes: tuple[Change, ...]
    unified: str
    truncated: bool = False
    redactions: int = 0  # masked before comparing (both sides alike)


def normalize(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The object without what Argo CD ignores when it diffs."""
    if obj is None:
        return None
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(out.get("metadata") or {})
    for key in _IGNORED_METADATA:
        meta.pop(key, None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _IGNORED_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def _named(items: Sequence[Any]) -> bool:
    return bool(items) and all(isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items)


def _equal(a: Any, b: Any) -> bool:
    # YAML and JSON disagree on 1 vs "1" only in quoting; Kubernetes normalises int-or-string fields.
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a == b)
    if (isinstance(a, int | float) and isinstance(b, str)) or (
        isinstance(b, int | float) and isinstance(a, str)
    ):
        return str(a) == str(b)
    return bool(a == b)


def _compare(live: Any, target: Any, path: Path, out: list[Change], *, strict: bool) -> None:
    """``strict``: every live key counts (an object that exists on one side only)."""
    if len(out) >= MAX_CHANGES:
        return
    if len(path) > MAX_DEPTH:
        if not _equal(live, target):
            out.append(Change(path, live, target))
        return
    if isinstance(target, Mapping) and isinstance(live, Mapping):
        keys = list(target) + ([k for k in live if k not in target] if strict else [])
        for key in keys:
            _compare(live.get(key), target.get(key), (*path, str(key)), out, strict=strict)
        return
    if isinstance(target, list) and isinstance(live, list) and _named(target) and _named(live):
        live_by_name = {str(i["name"]): i for i in live}
        target_names = [str(i["name"]) for i in target]
        for item in target:
            name = str(item["name"])
            other = live_by_name.get(name)
            if other is None:
                out.append(Change((*path, ("name", name)), None, item))
            else:
                _compare(other, item, (*path, ("name", name)), out, strict=strict)
        for name, item in live_by_name.items():
            if name not in target_names:
                out.append(Change((*path, ("name", name)), item, None))
        return
    if target is None and not strict:
        return  # not set in Git: a default filled in by the cluster
    if not _equal(live, target):
        out.append(Change(path, live, target))


def path_text(path: Path) -> str:
    parts: list[str] = []
    for part in path:
        if isinstance(part, tuple):
            parts.append(f"[{part[1]}]")
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts)


def _sparse(changes: Sequence[Change], side: str) -> dict[str, Any]:
    """A document holding only the changed fields of one side (named list items keep their name)."""
    root: dict[str, Any] = {}
    for change in changes:
        value = change.live if side == "live" else change.target
        if value is None:
            continue
        node: Any = root
        for i, part in enumerate(change.path):
            last = i == len(change.path) - 1
            if isinstance(part, tuple):
                items = node
                item = items.setdefault(("name", part[1]), {"name": part[1]})
                if last:
                    if isinstance(value, Mapping):
                        item.update(value)
                    else:
                        items[("name", part[1])] = value
                    break
                node = item
                continue
            if last:
                node[part] = value
            else:  # a mapping, or a named list kept as {("name", n): item} until dumped
                node = node.setdefault(part, {})
    result: dict[str, Any] = _lists(root)
    return result


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        if value and all(isinstance(k, tuple) for k in value):
            return [_lists(v) for v in value.values()]
        return {k: _lists(v) for k, v in value.items()}
    return value


def canonical_yaml(value: Any) -> str:
    if value in (None, {}):
        return ""
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, width=200, allow_unicode=True)


def diff_resource(
    ref: str,
    kind: str,
    live: Mapping[str, Any] | None,
    target: Mapping[str, Any] | None,
    *,
    redactions: int = 0,
) -> ResourceDiff:
    live_n, target_n = normalize(live), normalize(target)
    if live_n is None and target_n is None:
        return ResourceDiff(ref, kind, "same", (), "", redactions=redactions)
    changes: list[Change] = []
    if live_n is None:
        state = "added"
        _compare({}, target_n, (), changes, strict=True)
    elif target_n is None:
        state = "removed"
        _compare(live_n, {}, (), changes, strict=True)
    else:
        _compare(live_n, target_n, (), changes, strict=False)
        state = "modified" if changes else "same"
    truncated = len(changes) >= MAX_CHANGES
    live_doc = canonical_yaml(_sparse(changes, "live")).splitlines()
    target_doc = canonical_yaml(_sparse(changes, "target")).splitlines()
    unified = "\n".join(
        difflib.unified_diff(
            live_doc,
            target_doc,
            fromfile=f"live (cluster) {ref}",
            tofile=f"desired (Git) {ref}",
            n=max(len(live_doc), len(target_doc)),
            lineterm="",
        )
    )
    return ResourceDiff(ref, kind, state, tuple(changes), unified, truncated, redactions)


def _scalar(value: Any) -> str:
    if isinstance(value, Mapping | list):
        return "(object)"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _image_phrase(change: Change) -> str | None:
    if not (change.path and change.path[-1] == "image" and change.live and change.target):
        return None
    container = next((p[1] for p in reversed(change.path) if isinstance(p, tuple)), "?")
    live, target = str(change.live), str(change.target)
    live_repo, _, live_tag = live.rpartition(":") if ":" in live.rsplit("/", 1)[-1] else (live, "", "")
    target_repo, _, target_tag = (
        target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] else (target, "", "")
    )
    if live_repo == target_repo:
        return f"image tag of container {container} differs: {live_tag or 'latest'} live -> {target_tag or 'latest'} in Git"
    return f"image of container {container} differs: {live} live -> {target} in Git"


def phrase(change: Change) -> str:
    """One change in words, e.g. "spec.replicas 3 -> 5 in Git"."""
    image = _image_phrase(change)
    if image:
        return image
    field = change.field or "the object"
    if change.live is None:
        return f"{field} added in Git" + (
            f" ({_scalar(change.target)})" if not isinstance(change.target, Mapping | list) else ""
        )
    if change.target is None:
        return (
            f"{field} removed in Git (live {_scalar(change.live)})"
            if not isinstance(change.live, Mapping | list)
            else f"{field} removed in Git"
        )
    if isinstance(change.live, Mapping | list) or isinstance(change.target, Mapping | list):
        return f"{field} differs"
    return f"{field} {_scalar(change.live)} -> {_scalar(change.target)} in Git"


def summary(diff: ResourceDiff, limit: int = 5) -> str:
    if diff.state == "added":
        return "in Git but not in the cluster (a sync would create it)"
    if diff.state == "removed":
        return "in the cluster but no longer in Git (a sync with pruning would delete it)"
    phrases = [phrase(c) for c in diff.changes[:limit]]
    more = len(diff.changes) - limit
    return "; ".join(phrases) + (f"; and {more} more field(s)" if more > 0 else "")
