"""Conversation handles: only the owner, on the same application and provider, can open one."""

from __future__ import annotations

import pytest

from assistant_backend.conversations import Conversation, Handles
from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.identity import Caller

ALICE = Caller(username="alice", app_namespace="argocd", app_name="guestbook", project="default")
CONV = Conversation(provider="responses", model="m", state={"responses": ["r1", "r2"]}, context_fingerprint="f")


def not_found(call: object) -> None:
    with pytest.raises(ApiError) as raised:
        call()  # type: ignore[operator]
    assert raised.value.code is ErrorCode.CONVERSATION_NOT_FOUND


def test_round_trip_for_the_owner() -> None:
    handles = Handles("secret")
    assert handles.open(ALICE, handles.issue(ALICE, CONV), "responses") == CONV


def test_another_replica_with_the_same_secret_agrees() -> None:
    assert Handles("secret").open(ALICE, Handles("secret").issue(ALICE, CONV), "responses") == CONV


@pytest.mark.parametrize(
    "caller",
    [
        Caller(username="bob", app_namespace="argocd", app_name="guestbook", project="default"),
        Caller(username="alice", app_namespace="argocd", app_name="other", project="default"),
        Caller(username="alice", app_namespace="team-a", app_name="guestbook", project="default"),
    ],
)
def test_other_user_or_application_is_not_found(caller: Caller) -> None:
    handles = Handles("secret")
    handle = handles.issue(ALICE, CONV)
    not_found(lambda: handles.open(caller, handle, "responses"))


def test_tampering_other_provider_other_secret_garbage_are_not_found() -> None:
    handles = Handles("secret")
    handle = handles.issue(ALICE, CONV)
    version, body, signature = handle.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in (f"{version}.{flipped}.{signature}", handle + "x", "c1..", "", "garbage", "c2." + handle[3:],
                "c1." + "A" * 9000 + ".sig"):
        not_found(lambda bad=bad: handles.open(ALICE, bad, "responses"))
    not_found(lambda: handles.open(ALICE, handle, "agents"))
    not_found(lambda: Handles("rotated").open(ALICE, handle, "responses"))


def test_handles_do_not_reveal_the_user() -> None:
    import base64

    handle = Handles("secret").issue(ALICE, CONV)
    body = handle.split(".")[1]
    assert b"alice" not in base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


@pytest.mark.parametrize(
    "other",
    [
        # 2.13-3.1: Argo CD sets only the username; a browser adds its own Argocd-User-Id.
        Caller(username="alice", user_id="mallory", app_namespace="argocd", app_name="guestbook", project="default"),
        # 3.2+: Argo CD sets the id; a browser's Argocd-Username passes when the real one is empty.
        Caller(username="", user_id="alice", app_namespace="argocd", app_name="guestbook", project="default"),
        Caller(username="mallory", user_id="", app_namespace="argocd", app_name="guestbook", project="default"),
    ],
)
def test_forging_one_identity_header_does_not_open_anothers_conversation(other: Caller) -> None:
    handles = Handles("secret")
    not_found(lambda: handles.open(other, handles.issue(ALICE, CONV), "responses"))


def test_non_ascii_handles_are_not_found_not_500() -> None:
    handles = Handles("secret")
    handle = handles.issue(ALICE, CONV)
    for bad in (handle[:-1] + "é", "c1.é.é", handle.replace(".", "\u2024", 1), "c1.\udcff.x"):
        not_found(lambda bad=bad: handles.open(ALICE, bad, "responses"))


def test_handles_expire_after_their_lifetime_and_refuse_the_future() -> None:
    now = [1_000_000.0]
    handles = Handles("secret", max_age_s=3600, clock=lambda: now[0])
    handle = handles.issue(ALICE, CONV)
    now[0] += 3599
    assert handles.open(ALICE, handle, "responses") == CONV
    now[0] += 2
    not_found(lambda: handles.open(ALICE, handle, "responses"))
    # A handle "issued" far in the future (a replica with a broken clock) is not honoured for ever.
    future = Handles("secret", max_age_s=3600, clock=lambda: 5_000_000.0).issue(ALICE, CONV)
    not_found(lambda: handles.open(ALICE, future, "responses"))
