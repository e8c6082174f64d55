"""The OpenAPI 3.1 description of ``/v1/*``, served at ``GET /v1/openapi.json``.

Request bodies come from the pydantic models that validate them (so the two cannot drift), with the
checks pydantic cannot express as JSON Schema (the name patterns of ``requests.py``, the configured
question length) added by hand. Responses are written here: the error envelope with every stable
code, and the shapes of the JSON answers. The schemathesis tests hold the running backend to it.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from . import __version__, identity, requests
from .config import Settings
from .errors import STATUS, ErrorCode
from .identity import (
    APPLICATION_HEADER,
    CONTROL_PLANE_NAMESPACE_HEADER,
    GROUPS_HEADER,
    PROJECT_HEADER,
    USER_ID_HEADER,
    USERNAME_HEADER,
)

_REF = "#/components/schemas/{model}"
_PATH_PARAM_CONVERSATION = {
    "name": "conversation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": "The handle from the last `end` event of the conversation",
}

# Errors any authenticated /v1 call can answer, and those the Llama Stack behind it can cause.
_AUTH_ERRORS = (401, 400, 429)
_UPSTREAM_ERRORS = (502, 503, 504)


def _error_response(status: int) -> dict[str, Any]:
    codes = sorted(code.value for code, s in STATUS.items() if s == status)
    return {
        "description": ", ".join(codes),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _responses(ok: dict[str, dict[str, Any]], *statuses: int) -> dict[str, Any]:
    responses: dict[str, Any] = dict(ok)
    for status in sorted({*statuses, *_AUTH_ERRORS, 500}):
        responses[str(status)] = _error_response(status)
    return responses


# "Blank" as the backend decides it (str.strip), spelled out: regex engines disagree on what \s means.
_NOT_BLANK = "[^" + "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x3001)) if c.isspace()) + "]"


def _unanchored(pattern: str) -> str:
    return pattern.removeprefix("^").removesuffix("$")


def _optional(pattern: str) -> str:
    """An optional header may be sent empty: Argo CD's proxy treats empty as absent, and so do we."""
    return f"^({_unanchored(pattern)})?$"


def _identity_parameters() -> list[dict[str, Any]]:
    def header(name: str, required: bool, description: str, pattern: str) -> dict[str, Any]:
        schema = {"type": "string", "pattern": pattern}
        return {
            "name": name,
            "in": "header",
            "required": required,
            "schema": schema,
            "description": description,
        }

    application = (
        f"^{_unanchored(identity._DNS_LABEL.pattern)}:{_unanchored(identity._DNS_SUBDOMAIN.pattern)}$"
    )
    return [
        header(APPLICATION_HEADER, True, "`<namespace>:<application>`, set by Argo CD", application),
        header(
            PROJECT_HEADER,
            True,
            "The Application's project, checked by Argo CD",
            identity._DNS_SUBDOMAIN.pattern,
        ),
        header(
            USERNAME_HEADER,
            False,
            "Set by Argo CD 2.13+; this or the user id is required (400 missing_header)",
            _optional(identity._USER.pattern),
        ),
        header(
            USER_ID_HEADER,
            False,
            "Set by Argo CD 3.2+; wins over the user name",
            _optional(identity._USER.pattern),
        ),
        header(GROUPS_HEADER, False, "Comma-separated; advisory only, never trusted", r"^[^\x00-\x1f\x7f]*$"),
        header(
            CONTROL_PLANE_NAMESPACE_HEADER,
            False,
            "The Argo CD control plane's namespace",
            _optional(identity._DNS_LABEL.pattern),
        ),
    ]


def _request_schemas(settings: Settings) -> dict[str, Any]:
    _, top = models_json_schema([(requests.ChatRequest, "validation")], ref_template=_REF)
    schemas: dict[str, Any] = top["$defs"]
    chat = schemas["ChatRequest"]
    chat["properties"]["question"].update(
        {"maxLength": settings.limits.max_question_chars, "pattern": _NOT_BLANK, "description": "Not blank"}
    )
    chat["properties"]["model"]["anyOf"][0]["pattern"] = requests._MODEL.pattern
    resource = schemas["ResourceIn"]["properties"]
    for field, regex in (
        ("group", requests._GROUP),
        ("version", requests._VERSION),
        ("kind", requests._KIND),
        ("name", requests._NAME),
    ):
        resource[field]["pattern"] = regex.pattern
    # Empty means cluster-scoped, like null.
    resource["namespace"]["anyOf"][0]["pattern"] = _optional(requests._NAMESPACE.pattern)
    no_dots = {"not": {"pattern": r"\.\."}}
    resource["name"].update(no_dots)
    resource["namespace"]["anyOf"][0].update(no_dots)
    return schemas


def _response_schemas() -> dict[str, Any]:
    nullable_int = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
                        "message": {"type": "string"},
                    },
                }
            },
        },
        "Models": {
            "type": "object",
            "required": ["models"],
            "additionalProperties": False,
            "properties": {
                "models": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "default"],
                        "additionalProperties": False,
                        "properties": {"id": {"type": "string"}, "default": {"type": "boolean"}},
                    },
                }
            },
        },
        "Conversation": {
            "type": "object",
            "required": ["conversation_id", "turns"],
            "properties": {
                "conversation_id": {"type": "string"},
                "model": {"type": "string"},
                "turns": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["question", "answer"],
                        "properties": {
                            "question": {"type": "string"},
                            "answer": {"type": "string"},
                            "resource": {"type": ["object", "null"]},
                        },
                    },
                },
            },
        },
        "Usage": {
            "type": "object",
            "properties": {"input_tokens": nullable_int, "output_tokens": nullable_int},
        },
        "ChatEvent": {"oneOf": [_event(name, data) for name, data in _event_data().items()]},
    }


def _closed(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "additionalProperties": False,
        "properties": {**required, **(optional or {})},
    }


def _event_data() -> dict[str, dict[str, Any]]:
    """The JSON ``data`` of each SSE event of ``POST /v1/chat`` (stream.py)."""
    string, integer, nullable_string = {"type": "string"}, {"type": "integer"}, {"type": ["string", "null"]}
    item = _closed(
        {
            "kind": string,
            "ref": string,
            "tokens": integer,
            "truncated": {"type": "boolean"},
            "redactions": integer,
        }
    )
    return {
        "start": _closed({"conversation_id": nullable_string, "provider": string, "model": string}),
        "context": _closed(
            {"items": {"type": "array", "items": item}, "tokens_total": integer, "budget": integer},
            {"sent": {"type": "boolean"}, "notes": {"type": "array", "items": string}},
        ),
        "token": _closed({"text": string}),
        "end": _closed(
            {
                "conversation_id": string,
                "usage": {"anyOf": [{"$ref": "#/components/schemas/Usage"}, {"type": "null"}]},
                "elapsed_ms": integer,
            }
        ),
        "error": {"$ref": "#/components/schemas/Error/properties/error"},
    }


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }


_SSE_DESCRIPTION = """Server-sent events, `event:` + one JSON `data:` line each, and a comment every
`server.heartbeat_s`:
`start` {conversation_id, provider, model}; `context` {items: [{kind, ref, tokens, truncated,
redactions}], tokens_total, budget, sent, notes}; `token` {text} (many); then either `end`
{conversation_id, usage, elapsed_ms} or `error` {code, message}. Keep the `conversation_id` of `end`
for the next turn."""


def build_openapi(settings: Settings) -> dict[str, Any]:
    schemas = {**_request_schemas(settings), **_response_schemas()}
    identity = _identity_parameters()
    conversation_params = [*identity, _PATH_PARAM_CONVERSATION]
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
                    "parameters": identity,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}
                        },
                    },
                    "responses": _responses(
                        {
                            "200": {
                                "description": _SSE_DESCRIPTION,
                                # OpenAPI 3.1 without itemSchema: the schema describes each event.
                                "content": {
                                    "text/event-stream": {
                                        "schema": {"$ref": "#/components/schemas/ChatEvent"}
                                    }
                                },
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
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/Conversation"}
                                    }
                                },
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
                    "parameters": identity,
                    "responses": _responses(
                        {
                            "200": {
                                "description": "Models",
                                "content": {
                                    "application/json": {"schema": {"$ref": "#/components/schemas/Models"}}
                                },
                            }
                        },
                        *_UPSTREAM_ERRORS,
                    ),
                }
            },
        },
        "components": {
            "schemas": schemas,
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
