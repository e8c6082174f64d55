"""Identity: the shared secret first, then strict Argo CD headers, into an immutable Caller."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.datastructures import Headers

from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.identity import caller_from_headers, check_secret

GOOD = [
    ("argocd-application-name", "team-a:shop"),
    ("argocd-project-name", "team-a"),
    ("argocd-username", "alice@example.com"),
    ("argocd-user-groups", "dev, ops"),
    ("argocd-namespace", "argocd"),
]


def headers(pairs: list[tuple[str, str]]) -> Headers:
    return Headers(raw=[(k.lower().encode(), v.encode()) for k, v in pairs])


def replace(name: str, value: str | None) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in GOOD if k != name]
    return kept if value is None else [*kept, (name, value)]


def test_good_headers_make_an_immutable_caller() -> None:
    caller = caller_from_headers(headers(GOOD))
    assert (caller.user, caller.app_namespace, caller.app_name, caller.project) == (
        "alice@example.com", "team-a", "shop", "team-a")
    assert caller.groups == ("dev", "ops") and caller.argocd_namespace == "argocd"
    with pytest.raises(dataclasses.FrozenInstanceError):
        caller.user = "mallory"  # type: ignore[misc]


def test_user_id_wins_over_username() -> None:
    caller = caller_from_headers(headers([*GOOD, ("argocd-user-id", "1234-abcd")]))
    assert caller.user == "1234-abcd"


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        (replace("argocd-application-name", None), ErrorCode.MISSING_HEADER),
        (replace("argocd-project-name", None), ErrorCode.MISSING_HEADER),
        (replace("argocd-username", None), ErrorCode.MISSING_HEADER),
        (replace("argocd-application-name", "shop"), ErrorCode.BAD_APPLICATION_HEADER),
        (replace("argocd-application-name", "team-a/shop"), ErrorCode.BAD_APPLICATION_HEADER),
        (replace("argocd-application-name", "Team-A:shop"), ErrorCode.BAD_APPLICATION_HEADER),
        (replace("argocd-application-name", "team-a:../shop"), ErrorCode.BAD_APPLICATION_HEADER),
        (replace("argocd-application-name", "team-a:shop:x"), ErrorCode.BAD_APPLICATION_HEADER),
        (replace("argocd-application-name", "team\u2011a:shop"), ErrorCode.BAD_APPLICATION_HEADER),
        (replace("argocd-project-name", "Team A"), ErrorCode.BAD_HEADER),
        (replace("argocd-username", "alice\nadmin"), ErrorCode.BAD_HEADER),
        (replace("argocd-namespace", "argo/cd"), ErrorCode.BAD_HEADER),
        ([*GOOD, ("argocd-username", "mallory")], ErrorCode.BAD_HEADER),  # duplicated: refuse, don't pick
        ([*GOOD, ("argocd-application-name", "other:app")], ErrorCode.BAD_HEADER),
    ],
)
def test_bad_headers(pairs: list[tuple[str, str]], code: ErrorCode) -> None:
    with pytest.raises(ApiError) as raised:
        caller_from_headers(headers(pairs))
    assert raised.value.code is code


def test_duplicated_groups_are_ignored_not_trusted() -> None:
    caller = caller_from_headers(headers([*GOOD, ("argocd-user-groups", "admins")]))
    assert caller.groups == ()


@pytest.mark.parametrize("value", [None, "", "Bearer wrong", "Bearer secret ", "bearer secret"])
def test_secret_must_match_exactly(value: str | None) -> None:
    pairs = [] if value is None else [("authorization", value)]
    with pytest.raises(ApiError) as raised:
        check_secret(headers(pairs), "Authorization", "Bearer secret")
    assert raised.value.code is ErrorCode.UNAUTHENTICATED
    assert "Bearer" not in raised.value.message  # neither the expected nor the received value is echoed


def test_secret_twice_is_refused_even_if_one_matches() -> None:
    pairs = [("authorization", "Bearer secret"), ("authorization", "Bearer other")]
    with pytest.raises(ApiError):
        check_secret(headers(pairs), "Authorization", "Bearer secret")
    check_secret(headers([("authorization", "Bearer secret")]), "Authorization", "Bearer secret")
