"""Who is asking, about which application: the Argo CD proxy headers, trusted only with the secret.

Argo CD's proxy sets the identity headers only when they are non-empty and never deletes copies the
browser sent (docs/upstream-facts.md, Argo CD proxy extension). So the shared secret is the only thing that makes
any header trustworthy, user and application headers must appear exactly once, groups are advisory,
and the destination cluster is never taken from headers at all.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers

from .errors import ApiError, ErrorCode

APPLICATION_HEADER = "Argocd-Application-Name"
PROJECT_HEADER = "Argocd-Project-Name"
USERNAME_HEADER = "Argocd-Username"
USER_ID_HEADER = "Argocd-User-Id"
GROUPS_HEADER = "Argocd-User-Groups"
CONTROL_PLANE_NAMESPACE_HEADER = "Argocd-Namespace"

# RFC 1123 label (namespaces) and subdomain (Application and AppProject names).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Argo CD user names come from SSO (emails, `sub` claims) or local accounts: printable, no separators
# that could smuggle structure into logs or conversation ownership keys.
USER = re.compile(r"^[A-Za-z0-9@._+:=\-|/]{1,256}$")
_GROUP = re.compile(r"^[^\x00-\x1f\x7f,]{1,256}$")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request's identity and the application it was authorised for."""

    user: str
    app_namespace: str
    app_name: str
    project: str
    groups: tuple[str, ...] = ()
    argocd_namespace: str | None = None

    @property
    def application(self) -> str:
        """``<namespace>/<name>``, the form used in logs and the context."""
        return f"{self.app_namespace}/{self.app_name}"

    @property
    def owner_key(self) -> str:
        """What a conversation is bound to: this user on this application."""
        return f"{self.user}\n{self.app_namespace}\n{self.app_name}"


def check_secret(headers: Headers, header_name: str, expected: str | None) -> None:
    """Raise 401 unless the shared-secret header matches exactly (constant time)."""
    if expected is None:  # allowed only with auth.insecure_allow_no_secret (checked by config)
        return
    values = headers.getlist(header_name)
    if len(values) != 1 or not hmac.compare_digest(values[0].encode(), expected.encode()):
        raise ApiError(ErrorCode.UNAUTHENTICATED, "missing or invalid shared secret")


def _single(headers: Headers, name: str, *, required: bool) -> str | None:
    values: Sequence[str] = headers.getlist(name)
    if not values:
        if required:
            raise ApiError(ErrorCode.MISSING_HEADER, f"missing header {name}")
        return None
    if len(values) > 1:
        raise ApiError(ErrorCode.BAD_HEADER, f"header {name} must appear once")
    value = values[0].strip()
    if not value:
        if required:
            raise ApiError(ErrorCode.MISSING_HEADER, f"empty header {name}")
        return None
    return value


def parse_application(value: str) -> tuple[str, str]:
    """``<ns>:<app>`` -> (namespace, name), both validated as Kubernetes names."""
    namespace, sep, name = value.partition(":")
    if not sep or not DNS_LABEL.match(namespace) or not DNS_SUBDOMAIN.match(name):
        raise ApiError(
            ErrorCode.BAD_APPLICATION_HEADER,
            f"{APPLICATION_HEADER} must be '<namespace>:<application>' with Kubernetes names",
        )
    return namespace, name


def caller_from_headers(headers: Headers) -> Caller:
    """Build the caller from headers already authenticated by :func:`check_secret`."""
    app_value = _single(headers, APPLICATION_HEADER, required=True)
    project = _single(headers, PROJECT_HEADER, required=True)
    assert app_value is not None and project is not None
    namespace, name = parse_application(app_value)
    if not DNS_SUBDOMAIN.match(project):
        raise ApiError(ErrorCode.BAD_HEADER, f"{PROJECT_HEADER} is not a valid project name")

    # Argo CD 3.2+ sends the stable user id; older versions only the user name.
    user = _single(headers, USER_ID_HEADER, required=False) or _single(
        headers, USERNAME_HEADER, required=False
    )
    if user is None:
        raise ApiError(ErrorCode.MISSING_HEADER, f"missing header {USERNAME_HEADER} or {USER_ID_HEADER}")
    if not USER.match(user):
        raise ApiError(ErrorCode.BAD_HEADER, "user header has unexpected characters")

    groups: tuple[str, ...] = ()
    raw_groups = headers.getlist(GROUPS_HEADER)
    if len(raw_groups) == 1:  # advisory only; a duplicated header is ignored rather than trusted
        groups = tuple(g.strip() for g in raw_groups[0].split(",") if _GROUP.match(g.strip()))

    control_plane = _single(headers, CONTROL_PLANE_NAMESPACE_HEADER, required=False)
    if control_plane is not None and not DNS_LABEL.match(control_plane):
        raise ApiError(ErrorCode.BAD_HEADER, f"{CONTROL_PLANE_NAMESPACE_HEADER} is not a valid namespace")

    return Caller(
        user=user,
        app_namespace=namespace,
        app_name=name,
        project=project,
        groups=groups,
        argocd_namespace=control_plane,
    )
