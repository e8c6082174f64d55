"""Hostile headers: the shared secret, Argo CD's identity headers, forged extras, request ids.

Refused requests get their status and code and never reach the context source; accepted ones with
forged extras (groups, target cluster, forwarding headers) stream normally and the forged value never
reaches the model (docs/security.md, "Who the caller is"). The same table runs against the real
backend in ``tests/llamastack/test_abuse_hostile_requests.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from assistant_backend.errors import STATUS, ErrorCode
from tests.support.inprocess import Api, running_api
from tests.support.net import SECRET, argocd_headers

Header = tuple[str, str | bytes]
APP, PROJECT, USER = "Argocd-Application-Name", "Argocd-Project-Name", "Argocd-Username"


@dataclass(frozen=True)
class Case:
    name: str
    code: ErrorCode | None  # None: accepted
    drop: tuple[str, ...] = ()
    set: dict[str, str | bytes] = field(default_factory=dict)
    add: tuple[Header, ...] = ()  # appended, so a header can appear twice
    never_seen: str | None = None


CASES = [
    # -- the shared secret ------------------------------------------------------------------------
    Case("no secret", ErrorCode.UNAUTHENTICATED, drop=("Authorization",)),
    Case("wrong secret", ErrorCode.UNAUTHENTICATED, set={"Authorization": "Bearer guessed"}),
    Case("secret in other case", ErrorCode.UNAUTHENTICATED, set={"Authorization": SECRET.lower()}),
    Case("secret prefix only", ErrorCode.UNAUTHENTICATED, set={"Authorization": SECRET[:-3]}),
    Case("secret with a suffix", ErrorCode.UNAUTHENTICATED, set={"Authorization": SECRET + "x"}),
    Case("secret sent twice", ErrorCode.UNAUTHENTICATED, add=(("Authorization", SECRET),)),
    Case("wrong then right secret", ErrorCode.UNAUTHENTICATED, drop=("Authorization",),
         add=(("Authorization", "Bearer guessed"), ("Authorization", SECRET))),
    Case("secret in another header", ErrorCode.UNAUTHENTICATED, drop=("Authorization",), set={"X-Secret": SECRET}),
    Case("secret as a cookie", ErrorCode.UNAUTHENTICATED, drop=("Authorization",),
         set={"Cookie": f"argocd.token={SECRET}"}),
    # -- the application and project --------------------------------------------------------------
    Case("no application header", ErrorCode.MISSING_HEADER, drop=(APP,)),
    Case("empty application header", ErrorCode.MISSING_HEADER, set={APP: ""}),
    Case("application header twice", ErrorCode.BAD_HEADER, add=((APP, "team-a:shop"),)),
    Case("application without namespace", ErrorCode.BAD_APPLICATION_HEADER, set={APP: "guestbook"}),
    Case("application with slash", ErrorCode.BAD_APPLICATION_HEADER, set={APP: "argocd/guestbook"}),
    Case("application with path traversal", ErrorCode.BAD_APPLICATION_HEADER, set={APP: "argocd:../kube-system"}),
    Case("application with encoded slash", ErrorCode.BAD_APPLICATION_HEADER, set={APP: "argocd:guest%2Fbook"}),
    Case("application with extra colon", ErrorCode.BAD_APPLICATION_HEADER, set={APP: "argocd:guestbook:x"}),
    Case("application in upper case", ErrorCode.BAD_APPLICATION_HEADER, set={APP: "ArgoCD:Guestbook"}),
    Case("application with cyrillic homoglyph", ErrorCode.BAD_APPLICATION_HEADER,
         set={APP: "argocd:gu\u0435stbook".encode()}),
    Case("application with fullwidth colon", ErrorCode.BAD_APPLICATION_HEADER,
         set={APP: "argocd\uff1aguestbook".encode()}),
    Case("application namespace too long", ErrorCode.BAD_APPLICATION_HEADER, set={APP: "a" * 64 + ":guestbook"}),
    Case("no project header", ErrorCode.MISSING_HEADER, drop=(PROJECT,)),
    Case("project twice", ErrorCode.BAD_HEADER, add=((PROJECT, "team-a"),)),
    Case("project with a space", ErrorCode.BAD_HEADER, set={PROJECT: "default project"}),
    Case("project with path separator", ErrorCode.BAD_HEADER, set={PROJECT: "default/../admin"}),
    Case("control-plane namespace with slash", ErrorCode.BAD_HEADER, set={"Argocd-Namespace": "argocd/x"}),
    # -- the user ---------------------------------------------------------------------------------
    Case("no user header", ErrorCode.MISSING_HEADER, drop=(USER,)),
    Case("empty user header", ErrorCode.MISSING_HEADER, set={USER: ""}),
    Case("user header twice", ErrorCode.BAD_HEADER, add=((USER, "admin"),)),
    Case("user id twice", ErrorCode.BAD_HEADER, add=(("Argocd-User-Id", "a"), ("Argocd-User-Id", "b"))),
    # -- accepted, but the forged value is never trusted nor shown to the model ---------------------
    Case("forged groups", None, set={"Argocd-User-Groups": "system:masters,role:admin"}, never_seen="system:masters"),
    Case("forged target cluster URL", None, set={"Argocd-Target-Cluster-URL": "https://evil.example.com:6443"},
         never_seen="evil.example.com"),
    Case("forged target cluster name", None, set={"Argocd-Target-Cluster-Name": "evil-cluster"},
         never_seen="evil-cluster"),
    Case("groups header twice", None, add=(("Argocd-User-Groups", "a"), ("Argocd-User-Groups", "b"))),
    Case("forged X-Forwarded-For", None, set={"X-Forwarded-For": "10.0.0.1"}, never_seen="10.0.0.1"),
]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with running_api(limits={"requests_per_minute": 0}) as running:
        yield running


def _headers(case: Case) -> list[Header]:
    values: dict[str, str | bytes] = {k: v for k, v in argocd_headers().items() if k not in case.drop}
    values.update(case.set)
    return [*values.items(), ("Content-Type", "application/json"), *case.add]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_header(api: Api, case: Case) -> None:
    asked, opened = len(api.context.asked), len(api.provider.opened)
    response = api.client.post("/v1/chat", content=b'{"question": "Why?"}', headers=_headers(case))

    if case.code is None:
        assert response.status_code == 200, response.text
        assert "event: end" in response.text
        if case.never_seen:
            assert case.never_seen not in repr(api.provider.opened[-1]), "a forged value reached the model"
        return
    assert response.status_code == STATUS[case.code], response.text
    error = response.json()["error"]
    assert error["code"] == case.code.value
    assert "Traceback" not in error["message"] and SECRET not in response.text
    assert (len(api.context.asked), len(api.provider.opened)) == (asked, opened), "a refused request went on"


@pytest.mark.parametrize("path", ["/v1/models", "/v1/conversations/c1.a.b", "/v1/openapi.json"])
def test_every_v1_path_needs_the_secret(api: Api, path: str) -> None:
    response = api.client.get(path, headers=argocd_headers(secret=None))
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_metrics_need_no_secret(api: Api, path: str) -> None:
    assert api.client.get(path).status_code == 200


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("trace-42", True), ("a.b_c-D", True), ("r" * 65, False), ("two words", False), ("", False)],
)
def test_request_id_is_honoured_only_when_sane(api: Api, sent: str, kept: bool) -> None:
    response = api.client.get("/healthz", headers={"X-Request-Id": sent})
    returned = response.headers["x-request-id"]
    assert (returned == sent) is kept
    assert 0 < len(returned) <= 64


def test_the_caller_is_who_argo_cd_said(api: Api) -> None:
    api.chat(headers=argocd_headers(user="carol", application="team-a:shop", project="team-a",
                                    Argocd_User_Groups="dev, ops"))
    caller = api.context.asked[-1].caller
    assert (caller.user, caller.app_namespace, caller.app_name, caller.project) == ("carol", "team-a", "shop", "team-a")
    assert caller.groups == ("dev", "ops") and caller.argocd_namespace == "argocd"


def test_the_destination_never_comes_from_headers(api: Api) -> None:
    """The caller handed to the context source has no cluster at all: only the Application says."""
    api.chat(headers=argocd_headers(Argocd_Target_Cluster_URL="https://evil.example.com:6443"))
    assert "evil" not in repr(api.context.asked[-1])
