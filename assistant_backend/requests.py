"""Reading and validating request bodies: size-capped, JSON only, strict shapes, clear errors."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request

from .context.base import ResourceRef
from .errors import ApiError, ErrorCode

BODY_READ_TIMEOUT_S = 15.0  # a client trickling its body (slowloris) is cut off after this

_GROUP = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$")
_VERSION = re.compile(r"^v[0-9][a-z0-9]{0,20}$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Names of most kinds are DNS subdomains; RBAC and a few others allow ':' and '@'. Never '/' or '..'.
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._:@-]{0,251}[A-Za-z0-9])?$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
# Public for the scope check, which validates owner references from the cluster the same way.
KIND_PATTERN = _KIND
NAME_PATTERN = _NAME


class ResourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field("", max_length=253)
    version: str = Field(max_length=24)
    kind: str = Field(max_length=63)
    namespace: str | None = Field(None, max_length=63)
    name: str = Field(max_length=253)

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        if not _GROUP.fullmatch(value):
            raise ValueError("not an API group")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError("not an API version")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not _KIND.fullmatch(value):
            raise ValueError("not a Kubernetes kind")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _NAMESPACE.fullmatch(value) or ".." in value:
            raise ValueError("not a namespace name")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value) or ".." in value:
            raise ValueError("not a Kubernetes object name")
        return value

    def ref(self) -> ResourceRef:
        return ResourceRef(
            group=self.group, version=self.version, kind=self.kind, namespace=self.namespace, name=self.name
        )


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    conversation_id: str | None = Field(None, max_length=8192)
    resource: ResourceIn | None = None
    model: str | None = Field(None, max_length=200)

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        # JSON escapes can encode lone surrogates ("\ud800"); they cannot be sent on as UTF-8, and
        # would otherwise surface as an upstream failure (502) instead of the client's error.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains an invalid Unicode escape (lone surrogate)") from None
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is not None and not _MODEL.fullmatch(value):
            raise ValueError("not a model id")
        return value


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def read_json(request: Request, max_bytes: int, timeout_s: float = BODY_READ_TIMEOUT_S) -> Any:
    """The body as JSON, or an ApiError: 415 not JSON, 413 too large, 408 too slow, 422 malformed."""
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
    try:
        return json.loads(bytes(body).decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the body is not valid UTF-8") from None
    except RecursionError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the body is nested too deeply") from None
    except ValueError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the body is not valid JSON") from None


def parse_chat(data: Any, max_question_chars: int) -> ChatRequest:
    if not isinstance(data, dict):
        raise ApiError(ErrorCode.INVALID_REQUEST, "the body must be a JSON object")
    question = data.get("question")
    if isinstance(question, str) and len(question) > max_question_chars:
        raise ApiError(
            ErrorCode.QUESTION_TOO_LONG, f"the question is longer than {max_question_chars} characters"
        )
    try:
        parsed = ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        message = (
            "unknown field"
            if first["type"] == "extra_forbidden"
            else first["msg"].removeprefix("Value error, ")
        )
        raise ApiError(ErrorCode.INVALID_REQUEST, f"{where}: {message}") from None
    if not parsed.question.strip():
        raise ApiError(ErrorCode.INVALID_REQUEST, "question: must not be empty")
    return parsed
