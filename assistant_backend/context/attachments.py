"""Attachments: what the panel read from Argo CD's API under the user's own session, checked.

The panel sends managed-resource states (for the diff), revision metadata and container logs with
the question (docs/upstream-facts.md, "Argo CD API"). They are the user's own view, but the body is
client-controlled, so every attachment is held to the same scope as what the backend reads itself
(:mod:`.scope`) before it is used:

- a managed resource must be an entry of ``Application.status.resources``; its *live* state is kept
  only when the entry is readable (an AppProject-permitted namespace, not ``Missing``), as for the
  backend's own reads. Its states must be JSON objects describing that same resource;
- a revision must be one the Application is synced to or has synced (``status.sync``,
  ``status.history``, ``status.operationState``);
- a Pod's log must name a Pod in scope (listed, owned through an in-scope owner, or tracked), which
  needs the destination cluster: when it cannot be checked the log is dropped with a note.

Anything outside the Application is refused with 403 ``resource_not_in_application``; a malformed
one with 422 ``invalid_request``. Redaction happens later, with everything else (``render.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError, ErrorCode
from ..wire import Attachment, LogsAttachment, ManagedResourceAttachment, RevisionAttachment
from .base import ResourceRef
from .kube import KubeError
from .objects import LogTail, api_group
from .scope import Fetch, ScopeRules, check_scope, refuse


@dataclass(frozen=True, slots=True)
class AttachedState:
    ref: ResourceRef
    target: dict[str, Any] | None
    live: dict[str, Any] | None


@dataclass
class Attached:
    """The attachments that passed, split by what they are; ``notes`` say what was dropped."""

    states: list[AttachedState] = field(default_factory=list)
    revisions: list[RevisionAttachment] = field(default_factory=list)
    logs: list[LogsAttachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _invalid(index: int, what: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, f"attachments.{index}: {what}")


def _state(index: int, name: str, text: str | None, ref: ResourceRef) -> dict[str, Any] | None:
    if text is None or not text.strip():
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise _invalid(index, f"{name} is not JSON") from None
    if not isinstance(obj, dict):
        raise _invalid(index, f"{name} is not a JSON object")
    found = obj.get("metadata")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    if (
        obj.get("kind") != ref.kind
        or api_group(str(obj.get("apiVersion") or "")) != ref.group
        or meta.get("name") != ref.name
        or (meta.get("namespace") or None) not in (ref.namespace, None)
    ):
        raise _invalid(index, f"{name} does not describe {ref}")
    return obj


def app_revisions(app: Mapping[str, Any]) -> set[str]:
    """Every revision the Application is synced to, or was (history and the last operation)."""
    status = app.get("status") or {}
    found: set[str] = set()

    def add(holder: Any) -> None:
        if not isinstance(holder, Mapping):
            return
        if holder.get("revision"):
            found.add(str(holder["revision"]))
        found.update(str(r) for r in holder.get("revisions") or [] if r)

    add(status.get("sync"))
    for entry in status.get("history") or []:
        add(entry)
    add((status.get("operationState") or {}).get("syncResult"))
    return found


def check_listed(rules: ScopeRules, attachments: Sequence[Attachment], app_label: str) -> Attached:
    """Managed resources and revisions, checked against the Application alone (no cluster reads)."""
    out = Attached()
    revisions = app_revisions(rules.app)
    for index, attachment in enumerate(attachments):
        if isinstance(attachment, ManagedResourceAttachment):
            ref = attachment.resource.ref()
            entry = rules.entry(ref.group, ref.kind, ref.name, ref.namespace)
            if entry is None:
                raise refuse(ref, app_label)
            target = _state(index, "target", attachment.target, ref)
            live = _state(index, "live", attachment.live, ref)
            reason = rules.unreadable_reason(entry)
            if live is not None and reason is not None:
                out.notes.append(f"{ref}: the attached live state is not used, {reason}")
                live = None
            out.states.append(AttachedState(ref, target, live))
        elif isinstance(attachment, RevisionAttachment):
            if attachment.revision not in revisions:
                raise ApiError(
                    ErrorCode.RESOURCE_NOT_IN_APPLICATION,
                    f"revision {attachment.revision} is not a revision of application {app_label}",
                )
            out.revisions.append(attachment)
        else:
            ref = attachment.resource.ref()
            if (ref.group, ref.kind) != ("", "Pod") or not ref.namespace:
                raise _invalid(index, "logs must name a Pod (group '', kind Pod) with its namespace")
            out.logs.append(attachment)
    return out


async def check_logs(
    rules: ScopeRules, logs: Sequence[LogsAttachment], fetch: Fetch, app_label: str, *, max_lines: int
) -> tuple[list[LogTail], list[str]]:
    """The attached logs of Pods in scope, each cut to its last ``max_lines`` lines; 403 for a Pod that
    is not the Application's; a Pod whose scope cannot be checked is dropped with a note."""
    tails: list[LogTail] = []
    notes: list[str] = []
    checked: dict[ResourceRef, bool] = {}
    for attachment in logs:
        ref = attachment.resource.ref()
        if ref not in checked:
            try:
                scoped = await check_scope(rules, ref, fetch, app_label)  # raises 403 when not ours
                checked[ref] = scoped.reason is None
                if scoped.reason is not None:
                    notes.append(f"the attached log of {ref} is not used, {scoped.reason}")
            except KubeError as exc:
                checked[ref] = False
                notes.append(
                    f"could not verify that {ref} belongs to the Application ({exc.reason}); "
                    "its attached log is not used"
                )
        if not checked[ref]:
            continue
        lines = attachment.text.splitlines()[-max_lines:] if max_lines else []
        if lines:
            tails.append(
                LogTail(
                    str(ref.namespace or ""),
                    ref.name,
                    attachment.container or "(default)",
                    attachment.previous,
                    "\n".join(lines) + "\n",
                    source="argocd",
                )
            )
    return tails, notes
