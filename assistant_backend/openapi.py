"""The OpenAPI 3.1 description of ``/v1/*``, served at ``GET /v1/openapi.json``.

Every schema comes from the models of ``wire.py`` (so the document, the validation and the panel's
generated types cannot drift); this module only lays out the paths, the identity headers Argo CD's
proxy adds (patterns from ``identity.py``), which status each path can answer, and the one
configured value a model cannot know (the question's length limit). The schemathesis tests hold the
running backend to it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from . import __version__, identity, wire
from .config import Settings
from .errors import STATUS
from .identity import (
    APPLICATION_HEADER,
    CONTROL_PLANE_NAMESPACE_HEADER,
    GROUPS_HEADER,
    PROJECT_HEADER,
    USER_ID_HEADER,
    USERNAME_HEADER,
)

_SCHEMAS = "#/components/schemas/"

# Errors any authenticated /v1 call can answer, and those the Llama Stack behind it can cause.
_AUTH_ERRORS = (401, 400, 429)
_UPSTREAM_ERRORS = (502, 503, 504)

_SSE_DESCRIPTION = """Server-sent events, `event:` + one JSON `data:` line each (schemas `<Name>Event`),
and a comment every `server.heartbeat_s`: `start`, `context`, `token` (many), then `end` or `error`.
Keep the `conversation_id` of `end` for the next turn."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS + name}


def _json_content(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(schema)}}


def _responses(ok: dict[str, dict[str, Any]], *statuses: int) -> dict[str, Any]:
    responses: dict[str, Any] = dict(ok)
    for status in sorted({*statuses, *_AUTH_ERRORS, 500}):
        codes = sorted(code.value for code, s in STATUS.items() if s == status)
        responses[str(status)] = {"description": ", ".join(codes), "content": _json_content("ErrorResponse")}
    return responses


def _unanchored(pattern: str) -> str:
    return pattern.removeprefix("^").removesuffix("$")


def _optional(pattern: str) -> str:
    """An optional header may be sent empty: Argo CD's proxy treats empty as absent, and so do we."""
    return f"^({_unanchored(pattern)})?$"


def _header(name: str, required: bool, description: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": {"type": "string", "pattern": pattern},
        "description": description,
    }


def _identity_parameters() -> list[dict[str, Any]]:
    label, subdomain = identity.DNS_LABEL.pattern, identity.DNS_SUBDOMAIN.pattern
    user = _optional(identity.USER.pattern)
    return [
        _header(
            APPLICATION_HEADER,
            True,
            "`<namespace>:<application>`, set by Argo CD",
            f"^{_unanchored(label)}:{_unanchored(subdomain)}$",
        ),
        _header(PROJECT_HEADER, True, "The Application's project, checked by Argo CD", subdomain),
        _header(USERNAME_HEADER, False, "Set by Argo CD 2.13+; this or the user id is required", user),
        _header(USER_ID_HEADER, False, "Set by Argo CD 3.2+", user),
        _header(
            GROUPS_HEADER, False, "Comma-separated; advisory only, never trusted", r"^[^\x00-\x1f\x7f]*$"
        ),
        _header(
            CONTROL_PLANE_NAMESPACE_HEADER, False, "The Argo CD control plane's namespace", _optional(label)
        ),
    ]


class _Schema(GenerateJsonSchema):
    """Pydantic's JSON Schema without the per-field titles it derives from field names (noise in the
    document and in the generated TypeScript)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def schemas(settings: Settings | None = None) -> dict[str, Any]:
    """``components.schemas``: the request in validation mode, every answer and event as sent."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(wire.ChatRequest, "validation")]
    models += [(model, "serialization") for model in wire.ANSWERS]
    _, top = models_json_schema(models, ref_template=_SCHEMAS + "{model}", schema_generator=_Schema)
    found: dict[str, Any] = top["$defs"]
    if settings is not None:
        found["ChatRequest"]["properties"]["question"]["maxLength"] = settings.limits.max_question_chars
    # One schema for the stream as a whole: each event is its name plus its JSON data.
    found["ChatEvent"] = {
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": name},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": _ref(model.__name__),
                    },
                },
            }
            for name, model in wire.EVENTS.items()
        ]
    }
    return found


def build_openapi(settings: Settings) -> dict[str, Any]:
    headers = _identity_parameters()
    conversation_params = [
        *headers,
        {
            "name": "conversation_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "description": "The handle from the last `end` event of the conversation",
        },
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "argocd-assistant backend",
            "version": __version__,
            "description": "Called only by Argo CD's proxy extension, which adds the identity headers and the "
            'shared secret. Errors are `{"error": {"code", "message"}}` with stable codes.',
        },
        "security": [{"sharedSecret": []}],
        "paths": {
            "/v1/chat": {
                "post": {
                    "operationId": "chat",
                    "summary": "Ask a question about the Application or one of its resources; streamed answer",
                    "parameters": headers,
                    "requestBody": {"required": True, "content": _json_content("ChatRequest")},
                    "responses": _responses(
                        {
                            "200": {
                                "description": _SSE_DESCRIPTION,
                                # OpenAPI 3.1 without itemSchema: the schema describes each event.
                                "content": {"text/event-stream": {"schema": _ref("ChatEvent")}},
                            }
                        },
                        403,
                        404,
                        408,
                        413,
                        415,
                        422,
                        *_UPSTREAM_ERRORS,
                    ),
                }
            },
            "/v1/conversations/{conversation_id}": {
                "get": {
                    "operationId": "getConversation",
                    "summary": "The caller's own conversation, to restore the panel",
                    "parameters": conversation_params,
                    "responses": _responses(
                        {
                            "200": {
                                "description": "The turns as the user typed and read them",
                                "content": _json_content("Conversation"),
                            }
                        },
                        404,
                        *_UPSTREAM_ERRORS,
                    ),
                },
                "delete": {
                    "operationId": "deleteConversation",
                    "summary": "Forget the caller's own conversation",
                    "parameters": conversation_params,
                    "responses": _responses({"204": {"description": "Forgotten"}}, 404, *_UPSTREAM_ERRORS),
                },
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "The models the provider offers, the default marked",
                    "parameters": headers,
                    "responses": _responses(
                        {"200": {"description": "Models", "content": _json_content("Models")}},
                        *_UPSTREAM_ERRORS,
                    ),
                }
            },
        },
        "components": {
            "schemas": schemas(settings),
            "securitySchemes": {
                "sharedSecret": {
                    "type": "apiKey",
                    "in": "header",
                    "name": settings.auth.header,
                    "description": "The value Argo CD's proxy-extension config sets (auth.secret)",
                }
            },
        },
    }
