"""Reading and validating request bodies: size-capped, JSON only, strict shapes, clear errors.

The shapes themselves are the models of ``wire.py``; this module reads the bytes and turns every
refusal into an :class:`ApiError` with its stable code.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from .errors import ApiError, ErrorCode
from .wire import PATTERN_MESSAGES, ChatRequest

BODY_READ_TIMEOUT_S = 15.0  # a client trickling its body (slowloris) is cut off after this


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def read_json(request: Request, max_bytes: int, timeout_s: float = BODY_READ_TIMEOUT_S) -> Any:
    """The body as JSON, or an ApiError: 415 not JSON, 413 too large, 408 too slow, 422 malformed."""
    return parse_json(await read_body(request, max_bytes, timeout_s))


async def read_body(request: Request, max_bytes: int, timeout_s: float = BODY_READ_TIMEOUT_S) -> bytes:
    """The raw JSON body, at most ``max_bytes``: 415 not JSON, 413 too large, 408 too slow."""
    if not _is_json(request.headers.get("content-type")):
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, "the body must be JSON (Content-Type: application/json)"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(ErrorCode.BODY_TOO_LARGE, f"the body is larger than {max_bytes} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise ApiError(ErrorCode.BODY_TOO_LARGE, f"the body is larger than {max_bytes} bytes")
    except TimeoutError:
        raise ApiError(ErrorCode.REQUEST_TIMEOUT, "the body was not received in time") from None
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """422 for anything that is not UTF-8 JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the body is not valid UTF-8") from None
    except RecursionError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the body is nested too deeply") from None
    except ValueError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the body is not valid JSON") from None


def _message(error: ErrorDetails) -> str:
    field = str(error["loc"][-1]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "string_unicode":
        # JSON escapes can encode lone surrogates ("\ud800"); pydantic refuses them (they could not be
        # sent on as UTF-8), and the client should hear why.
        return "contains an invalid Unicode escape (lone surrogate)"
    if error["type"] == "string_pattern_mismatch":
        # The pattern itself is in the OpenAPI document; a human wants the words.
        return "must not be empty" if field == "question" else PATTERN_MESSAGES.get(field, "invalid value")
    return error["msg"].removeprefix("Value error, ")


def check_chat_size(size: int, data: Any, max_body_bytes: int, max_attachments_bytes: int) -> None:
    """413 unless the attachments fit their own limit and the rest of the body its usual one.

    The body was read with both limits together; the attachments' share is measured on their compact
    re-encoding (never larger than what the panel sent), so the rest is never under-counted."""
    attachments = data.get("attachments") if isinstance(data, dict) else None
    share = 0
    if attachments is not None:
        share = len(json.dumps(attachments, ensure_ascii=False, separators=(",", ":")).encode())
    if share > max_attachments_bytes:
        raise ApiError(
            ErrorCode.BODY_TOO_LARGE, f"the attachments are larger than {max_attachments_bytes} bytes"
        )
    if size - share > max_body_bytes:
        raise ApiError(ErrorCode.BODY_TOO_LARGE, f"the body is larger than {max_body_bytes} bytes")


def parse_chat(data: Any, max_question_chars: int) -> ChatRequest:
    if not isinstance(data, dict):
        raise ApiError(ErrorCode.INVALID_REQUEST, "the body must be a JSON object")
    question = data.get("question")
    if isinstance(question, str) and len(question) > max_question_chars:
        raise ApiError(
            ErrorCode.QUESTION_TOO_LONG, f"the question is longer than {max_question_chars} characters"
        )
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(ErrorCode.INVALID_REQUEST, f"{where}: {_message(first)}") from None
