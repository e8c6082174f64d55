"""The stable error codes of the HTTP API and the one exception that carries them.

Every error a client can see has a ``code`` from :class:`ErrorCode`; its HTTP status is fixed here,
in one place, so the README, the UI and the tests all agree (the body's shape is ``wire.ErrorResponse``).
Messages are for humans and never contain internals (stack traces, upstream bodies, secrets).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "unauthenticated"
    MISSING_HEADER = "missing_header"
    BAD_APPLICATION_HEADER = "bad_application_header"
    BAD_HEADER = "bad_header"
    INVALID_REQUEST = "invalid_request"
    QUESTION_TOO_LONG = "question_too_long"
    BODY_TOO_LARGE = "body_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    CONVERSATION_NOT_FOUND = "conversation_not_found"
    APPLICATION_NOT_FOUND = "application_not_found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    RESOURCE_NOT_IN_APPLICATION = "resource_not_in_application"
    PROJECT_MISMATCH = "project_mismatch"
    UNKNOWN_MODEL = "unknown_model"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_STREAMS = "too_many_streams"
    LLAMA_STACK_UNAVAILABLE = "llama_stack_unavailable"
    LLAMA_STACK_TIMEOUT = "llama_stack_timeout"
    LLAMA_STACK_ERROR = "llama_stack_error"
    NOT_READY = "not_ready"
    INTERNAL = "internal"


STATUS: Mapping[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.MISSING_HEADER: 400,
    ErrorCode.BAD_APPLICATION_HEADER: 400,
    ErrorCode.BAD_HEADER: 400,
    ErrorCode.INVALID_REQUEST: 422,
    ErrorCode.QUESTION_TOO_LONG: 422,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.CONVERSATION_NOT_FOUND: 404,
    ErrorCode.APPLICATION_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.RESOURCE_NOT_IN_APPLICATION: 403,
    ErrorCode.PROJECT_MISMATCH: 403,
    ErrorCode.UNKNOWN_MODEL: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_MANY_STREAMS: 429,
    ErrorCode.LLAMA_STACK_UNAVAILABLE: 503,
    ErrorCode.LLAMA_STACK_TIMEOUT: 504,
    ErrorCode.LLAMA_STACK_ERROR: 502,
    ErrorCode.NOT_READY: 503,
    ErrorCode.INTERNAL: 500,
}


class ApiError(Exception):
    """An error the client is meant to see: a stable code, a human message, optional headers."""

    def __init__(self, code: ErrorCode, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def __repr__(self) -> str:
        return f"ApiError({self.code.value!r}, {self.message!r})"
