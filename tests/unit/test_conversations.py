"""Conversation handles: only the owner, on the same application and provider, can open one."""

from __future__ import annotations

import pytest

from assistant_backend.conversations import Conversation, Handles
from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.identity import Caller

ALICE = Caller(user="alice", app_namespace="argocd", app_name="guestbook", project="default")
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
        Caller(user="bob", app_namespace="argocd", app_name="guestbook", project="default"),
        Caller(user="alice", app_namespace="argocd", app_name="other", project="default"),
        Caller(user="alice", app_namespace="team-a", app_name="guestbook", project="default"),
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
