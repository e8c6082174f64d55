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
    assert (caller.username, caller.app_namespace, caller.app_name, caller.project) == (
        "alice@example.com", "team-a", "shop", "team-a")
    assert caller.groups == ("dev", "ops") and caller.argocd_namespace == "argocd"
    with pytest.raises(dataclasses.FrozenInstanceError):
        caller.username = "mallory"  # type: ignore[misc]


def test_the_caller_is_the_pair_of_username_and_user_id() -> None:
    both = caller_from_headers(headers([*GOOD, ("argocd-user-id", "1234-abcd")]))
    assert (both.username, both.user_id) == ("alice@example.com", "1234-abcd")
    name_only = caller_from_headers(headers(GOOD))
    id_only = caller_from_headers(headers([*replace("argocd-username", None), ("argocd-user-id", "1234-abcd")]))
    assert (name_only.user_id, id_only.username) == ("", "")
    # Forging either header alone never yields another person's identity or ownership key.
    keys = {c.identity for c in (both, name_only, id_only)}
    assert len(keys) == 3 and len({c.owner_key for c in (both, name_only, id_only)}) == 3


def test_separators_inside_values_cannot_make_two_pairs_collide() -> None:
    a = caller_from_headers(headers([*replace("argocd-username", "a\\"), ("argocd-user-id", "b")]))
    b = caller_from_headers(headers([*replace("argocd-username", "a"), ("argocd-user-id", "\\b")]))
    c = caller_from_headers(headers([*replace("argocd-username", 'a", "b'), ("argocd-user-id", "")]))
    assert len({a.identity, b.identity, c.identity}) == 3


@pytest.mark.parametrize(
    "value",
    [
        "cn=Jane Doe,ou=People,dc=acme,dc=example",  # Dex LDAP with idAttr: DN
        "jane.doe+argo@example.com",
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301",  # OIDC sub
        "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs",  # Dex federated id
        "Zoë Ünal (ops)",
    ],
)
def test_real_user_ids_are_accepted_as_opaque_text(value: str) -> None:
    caller = caller_from_headers(headers([*replace("argocd-username", None), ("argocd-user-id", value)]))
    assert caller.user_id == value and caller.username == ""
    caller = caller_from_headers(headers(replace("argocd-username", value)))
    assert caller.username == value


def test_neither_identity_header_is_refused() -> None:
    # argocd-server --disable-auth forwards no identity: the backend cannot tell users apart.
    with pytest.raises(ApiError) as raised:
        caller_from_headers(headers(replace("argocd-username", None)))
    assert raised.value.code is ErrorCode.MISSING_HEADER
    with pytest.raises(ApiError):
        caller_from_headers(headers([*replace("argocd-username", ""), ("argocd-user-id", " ")]))


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
        (replace("argocd-username", "alice\x1b[31m"), ErrorCode.BAD_HEADER),
        (replace("argocd-username", "alice\x85admin"), ErrorCode.BAD_HEADER),
        (replace("argocd-username", "al\u200bice"), ErrorCode.BAD_HEADER),  # zero-width space
        (replace("argocd-username", "alice\u202eadmin"), ErrorCode.BAD_HEADER),  # bidi override
        (replace("argocd-username", "alice\u2028admin"), ErrorCode.BAD_HEADER),  # line separator
        (replace("argocd-username", "a" * 1025), ErrorCode.BAD_HEADER),
        ([*GOOD, ("argocd-user-id", "id\x00")], ErrorCode.BAD_HEADER),
        ([*GOOD, ("argocd-user-id", "1"), ("argocd-user-id", "2")], ErrorCode.BAD_HEADER),
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
