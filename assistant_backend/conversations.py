"""Conversation handles: the stateless backend's way to know whose conversation an id is.

Llama Stack keeps the conversation itself. The id the client holds is a handle: the provider's state
(agent and session ids, or response ids), the model, the fingerprint of the context the conversation
last saw, and a tag of its owner, signed with HMAC-SHA256. Any replica holding the key can check it;
a handle that is forged, altered, made for another user or another application, or for another
provider, is simply "not found" (404), so ids leak nothing about other people's conversations.

The key is derived from the shared secret, so every replica agrees on it and rotating the secret
retires old conversations. A handle carries the time it was issued (every turn issues a new one), so
a conversation idle for longer than ``conversations.max_age_days`` is "not found" too: handles travel
in URL paths, which access logs keep.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, ErrorCode
from .identity import Caller
from .providers.base import State

_VERSION = "c1"
_KEY_LABEL = b"argocd-assistant conversation handles v1"
MAX_HANDLE_LENGTH = 8192
_CLOCK_SKEW_S = 300  # replicas' clocks may disagree a little


@dataclass(frozen=True, slots=True)
class Conversation:
    provider: str
    model: str
    state: State
    context_fingerprint: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Handles:
    def __init__(
        self, secret: str | None, *, max_age_s: float = 30 * 86400, clock: Callable[[], float] = time.time
    ) -> None:
        # Without a secret (development only) each process signs with its own random key.
        material = secret.encode() if secret else secrets.token_bytes(32)
        self._key = hmac.new(material, _KEY_LABEL, hashlib.sha256).digest()
        self._max_age_s = max_age_s
        self._clock = clock

    def _owner_tag(self, caller: Caller) -> str:
        return _b64(hmac.new(self._key, caller.owner_key.encode(), hashlib.sha256).digest()[:12])

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, f"{_VERSION}.{body}".encode(), hashlib.sha256).digest()[:18])

    def issue(self, caller: Caller, conversation: Conversation) -> str:
        payload: dict[str, Any] = {
            "o": self._owner_tag(caller),
            "p": conversation.provider,
            "m": conversation.model,
            "f": conversation.context_fingerprint,
            "s": dict(conversation.state),
            "t": int(self._clock()),
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{_VERSION}.{body}.{self._sign(body)}"

    def open(self, caller: Caller, handle: str, provider: str) -> Conversation:
        """The caller's conversation behind ``handle``, or 404 ``conversation_not_found``."""
        not_found = ApiError(ErrorCode.CONVERSATION_NOT_FOUND, "conversation not found")
        # hmac.compare_digest refuses non-ASCII str: such a handle is simply not one of ours.
        if len(handle) > MAX_HANDLE_LENGTH or not handle.isascii():
            raise not_found
        version, _, rest = handle.partition(".")
        body, _, signature = rest.partition(".")
        if version != _VERSION or not body or not signature:
            raise not_found
        if not hmac.compare_digest(signature, self._sign(body)):
            raise not_found
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            raise not_found from None
        if not isinstance(payload, dict) or not hmac.compare_digest(
            str(payload.get("o")), self._owner_tag(caller)
        ):
            raise not_found
        if payload.get("p") != provider or not isinstance(payload.get("s"), dict):
            raise not_found
        issued = payload.get("t")
        now = self._clock()
        if not isinstance(issued, int) or not (now - self._max_age_s <= issued <= now + _CLOCK_SKEW_S):
            raise not_found
        return Conversation(
            provider=provider,
            model=str(payload.get("m")),
            state=payload["s"],
            context_fingerprint=payload.get("f"),
        )
