"""The Argo CD Application: read it (checking the project) and summarise what a human looks at first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ApiError, ErrorCode
from ..identity import Caller
from .kube import KubeClient, segment

GROUP, VERSION, KIND = "argoproj.io", "v1alpha1", "Application"
MAX_LISTED_RESOURCES = 40


def _path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/applications/{name}"


async def read_application(client: KubeClient, caller: Caller) -> dict[str, Any]:
    """The caller's Application; 404 if absent, 403 if its project is not the one Argo CD checked.

    Raises :class:`~.kube.KubeError` when it cannot be read (the caller turns that into a note).
    """
    app = await client.get_json(_path(caller.app_namespace, caller.app_name))
    if app is None:
        raise ApiError(ErrorCode.APPLICATION_NOT_FOUND, f"application {caller.application} not found")
    if project_of(app) != caller.project:
        # Argo CD authorised the request for the project in the header; anything else is a mismatch
        # (a moved Application, or a forged header behind a misconfigured proxy).
        raise ApiError(
            ErrorCode.PROJECT_MISMATCH, f"application {caller.application} is not in project {caller.project}"
        )
    return compact(app)


def project_of(app: Mapping[str, Any]) -> str:
    return str((app.get("spec") or {}).get("project") or "default")


def compact(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the engine sees it, from a GET or the control-plane cache alike (the cache
    keeps it this way): without ``metadata.managedFields`` (often most of metadata, never read)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return obj


async def read_project(client: KubeClient, control_plane: str, project: str) -> dict[str, Any] | None:
    """The AppProject (in the control plane's namespace), or None when it does not exist."""
    found = await client.get_json(
        f"/apis/{GROUP}/{VERSION}/namespaces/{segment(control_plane)}/appprojects/{segment(project)}"
    )
    return compact(found) if found is not None else None


async def read_argocd_cm(client: KubeClient, control_plane: str) -> dict[str, Any] | None:
    """argocd-cm (tracking method, instance label key), or None when it does not exist."""
    found = await client.get_json(f"/api/v1/namespaces/{segment(control_plane)}/configmaps/argocd-cm")
    return compact(found) if found is not None else None


def destination(app: Mapping[str, Any]) -> dict[str, Any]:
    return dict((app.get("spec") or {}).get("destination") or {})


def resources(app: Mapping[str, Any]) -> list[dict[str, Any]]:
    listed = (app.get("status") or {}).get("resources") or []
    return [dict(r) for r in listed if isinstance(r, Mapping)]


def resource_label(entry: Mapping[str, Any]) -> str:
    group = entry.get("group") or ""
    kind = entry.get("kind", "?")
    ns = entry.get("namespace") or ""
    name = entry.get("name", "?")
    prefix = f"{group}/{kind}" if group else str(kind)
    return f"{prefix} {ns + '/' if ns else ''}{name}"


def is_problem(entry: Mapping[str, Any]) -> bool:
    health = ((entry.get("health") or {}).get("status")) or ""
    return entry.get("status") == "OutOfSync" or health in (
        "Degraded",
        "Missing",
        "Progressing",
        "Suspended",
        "Unknown",
    )


def problem_resources(app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """OutOfSync or not-Healthy resources, worst first (Degraded/Missing before Progressing/OutOfSync)."""
    rank = {"Degraded": 0, "Missing": 1, "Unknown": 2, "Progressing": 3, "Suspended": 4}

    def key(entry: Mapping[str, Any]) -> tuple[int, int]:
        health = ((entry.get("health") or {}).get("status")) or ""
        return rank.get(health, 5), 0 if entry.get("status") == "OutOfSync" else 1

    return sorted((r for r in resources(app) if is_problem(r)), key=key)


def _sources(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if spec.get("sources"):
        return [s for s in spec["sources"] if isinstance(s, Mapping)]
    return [spec["source"]] if isinstance(spec.get("source"), Mapping) else []


def _line(label: str, value: Any) -> str:
    return f"{label}: {value}"


def summarize(app: Mapping[str, Any]) -> str:
    """A compact, human-order summary: sync, health, conditions, last operation, problem resources."""
    meta = app.get("metadata") or {}
    spec = app.get("spec") or {}
    status = app.get("status") or {}
    out = [
        f"Application {meta.get('namespace')}/{meta.get('name')} (project {spec.get('project', 'default')})"
    ]
    for source in _sources(spec):
        where = source.get("path") or source.get("chart") or ""
        out.append(
            _line(
                "Source", f"{source.get('repoURL', '?')} {where} @ {source.get('targetRevision') or 'HEAD'}"
            )
        )
    dest = spec.get("destination") or {}
    out.append(
        _line(
            "Destination",
            f"{dest.get('server') or dest.get('name') or '?'} namespace {dest.get('namespace') or '-'}",
        )
    )
    sync = status.get("sync") or {}
    revision = sync.get("revision") or ",".join(sync.get("revisions") or []) or "unknown"
    out.append(_line("Sync status", f"{sync.get('status', 'Unknown')} (revision {revision})"))
    health = status.get("health") or {}
    health_text = str(health.get("status", "Unknown"))
    if health.get("message"):
        health_text += f" - {health['message']}"
    out.append(_line("Health", health_text))
    for condition in status.get("conditions") or []:
        out.append(f"Condition {condition.get('type')}: {condition.get('message', '')}")
    out.extend(_operation(status.get("operationState") or {}))
    problems = problem_resources(app)
    total = len(resources(app))
    if problems:
        out.append(f"Resources not healthy or out of sync ({len(problems)} of {total}):")
        for entry in problems[:MAX_LISTED_RESOURCES]:
            health = entry.get("health") or {}
            text = f"  - {resource_label(entry)}: sync {entry.get('status', '?')}, health {health.get('status', '-')}"
            if health.get("message"):
                text += f" - {health['message']}"
            if entry.get("requiresPruning"):
                text += " (requires pruning)"
            out.append(text)
        if len(problems) > MAX_LISTED_RESOURCES:
            out.append(f"  ... and {len(problems) - MAX_LISTED_RESOURCES} more")
    else:
        out.append(f"All {total} resources are Synced and Healthy.")
    return "\n".join(out)


def _operation(state: Mapping[str, Any]) -> list[str]:
    if not state:
        return []
    out = [
        f"Last operation: {state.get('phase', '?')}"
        + (f" - {state['message']}" if state.get("message") else "")
        + (f" (finished {state['finishedAt']})" if state.get("finishedAt") else "")
    ]
    result = state.get("syncResult") or {}
    if result.get("revision"):
        out.append(f"  synced revision {result['revision']}")
    for res in failed_sync_results(result.get("resources") or []):
        kind = "hook" if res.get("hookType") else "resource"
        hook = f" {res['hookType']} hook," if res.get("hookType") else ""
        phase = res.get("hookPhase") or res.get("status")
        out.append(
            f"  failed {kind}: {resource_label(res)} ({hook} {phase}): {res.get('message', '')}".replace(
                "( ", "("
            )
        )
    return out


def failed_sync_results(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        r for r in results if r.get("status") == "SyncFailed" or r.get("hookPhase") in ("Failed", "Error")
    ]
