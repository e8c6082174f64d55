"""Who is asking, about which application: the Argo CD proxy headers, trusted only with the secret.

Argo CD's proxy sets the identity headers only when they are non-empty and never deletes copies the
browser sent (docs/upstream-facts.md, "Argo CD proxy extension"). So the shared secret is the only
thing that makes any header trustworthy, user and application headers must appear exactly once,
groups are advisory, and the destination cluster is never taken from headers at all.

Which identity header Argo CD sets depends on its version: 2.13 to 3.1 set ``Argocd-Username``
(only when non-empty) and never ``Argocd-User-Id``, so a browser's own ``Argocd-User-Id`` passes
through; 3.2 and later always set ``Argocd-User-Id`` while ``Argocd-Username`` may be empty and then
passes a browser's copy through. Neither header alone is unforgeable on every version; the pair is
(docs/security.md, "Identity"). So a caller *is* the pair (username, user id), an absent header
counting as empty: forging one of them never matches another user. Values are opaque: Dex LDAP
with ``idAttr: DN`` gives ``cn=Jane Doe,ou=People,dc=acme``, SSO gives emails or ``sub`` UUIDs.
"""

from __future__ import annotations

import hmac
import json
import re
import unicodedata
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
# User names and ids are opaque printable text (emails, `sub` UUIDs, LDAP DNs with commas and
# spaces); control characters (C0, DEL, C1) could forge log lines, so they are refused.
MAX_USER_CHARS = 1024
USER_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f]{{1,{MAX_USER_CHARS}}}$"
USER = re.compile(USER_PATTERN)
# Also refused: format characters (zero-width, bidi overrides), surrogates and line/paragraph
# separators, which would make a log line show another name than the one it records.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_GROUP = re.compile(r"^[^\x00-\x1f\x7f-\x9f,]{1,256}$")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request's identity and the application it was authorised for.

    ``username`` and ``user_id`` are "" when their header was absent; at least one is not.
    """

    username: str
    app_namespace: str
    app_name: str
    project: str
    user_id: str = ""
    groups: tuple[str, ...] = ()
    argocd_namespace: str | None = None

    @property
    def application(self) -> str:
        """``<namespace>/<name>``, the form used in logs and the context."""
        return f"{self.app_namespace}/{self.app_name}"

    @property
    def user(self) -> str:
        """A readable name for logs and messages (not an identity: see :attr:`identity`)."""
        return self.username or self.user_id

    @property
    def identity(self) -> str:
        """The person, as the pair (username, user id): what limits and ownership are keyed by.
        JSON keeps the two apart whatever characters they hold."""
        return json.dumps([self.username, self.user_id], ensure_ascii=True)

    @property
    def limit_keys(self) -> tuple[str, ...]:
        """What per-user limits count against: each identity header present, separately. Argo CD
        sets one of them itself on every version, so a browser adding (or varying) the other one
        still spends the same person's allowance."""
        keys = (
            f"username:{self.username}" if self.username else "",
            f"user-id:{self.user_id}" if self.user_id else "",
        )
        return tuple(k for k in keys if k)

    @property
    def owner_key(self) -> str:
        """What a conversation is bound to: this person on this application."""
        return json.dumps([self.username, self.user_id, self.app_namespace, self.app_name], ensure_ascii=True)


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


def _user_header(headers: Headers, name: str) -> str:
    """An identity header as text ("" when absent). Argo CD (Go) sends UTF-8 bytes; the ASGI server
    hands them over as latin-1, so they are decoded again before control characters are checked."""
    raw = _single(headers, name, required=False)
    if raw is None:
        return ""
    try:
        value = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise ApiError(ErrorCode.BAD_HEADER, f"header {name} is not UTF-8") from None
    if not USER.fullmatch(value) or any(unicodedata.category(c) in _INVISIBLE for c in value):
        raise ApiError(ErrorCode.BAD_HEADER, f"header {name} has control characters or is too long")
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

    # The pair, absent = empty (see the module docstring): 2.13-3.1 set the username, 3.2+ the id.
    username = _user_header(headers, USERNAME_HEADER)
    user_id = _user_header(headers, USER_ID_HEADER)
    if not username and not user_id:
        # Also what `argocd-server --disable-auth` gives: it forwards no identity at all.
        raise ApiError(ErrorCode.MISSING_HEADER, f"missing header {USERNAME_HEADER} or {USER_ID_HEADER}")

    groups: tuple[str, ...] = ()
    raw_groups = headers.getlist(GROUPS_HEADER)
    if len(raw_groups) == 1:  # advisory only; a duplicated header is ignored rather than trusted
        groups = tuple(g.strip() for g in raw_groups[0].split(",") if _GROUP.match(g.strip()))

    control_plane = _single(headers, CONTROL_PLANE_NAMESPACE_HEADER, required=False)
    if control_plane is not None and not DNS_LABEL.match(control_plane):
        raise ApiError(ErrorCode.BAD_HEADER, f"{CONTROL_PLANE_NAMESPACE_HEADER} is not a valid namespace")

    return Caller(
        username=username,
        user_id=user_id,
        app_namespace=namespace,
        app_name=name,
        project=project,
        groups=groups,
        argocd_namespace=control_plane,
    )
