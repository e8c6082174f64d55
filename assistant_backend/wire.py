"""The wire schema of `/v1/*`: every request body, JSON answer and SSE event payload, once.

These models are the single source of the shapes: `requests.py` validates bodies with them, the
handlers and `stream.py` serialise with them, `openapi.py` publishes their JSON Schema, and the
panel's TypeScript types (`extension-ui/src/wire.ts`) are generated from that document. The name
patterns are public constants placed on the fields, so validation and the published schema are the
same regular expressions (pydantic runs them with its linear-time Rust engine; no backtracking).

Request models forbid unknown fields; answer models list every field as required (the backend always
sends them, `null` where there is no value), so generated clients need no optional checks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .context.base import ResourceRef
from .errors import ErrorCode

# RFC 1123 label: namespaces. Contains no '.', so no '..'.
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# API groups are DNS subdomains; the empty group is the core one.
GROUP_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$"
VERSION_PATTERN = r"^v[0-9][a-z0-9]{0,20}$"
KIND_PATTERN = r"^[A-Z][A-Za-z0-9]{0,62}$"
# Names of most kinds are DNS subdomains; RBAC and a few others allow ':' and '@'. Never '/' or '..'.
NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._:@-]{0,251}[A-Za-z0-9])?$"
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$"
# "Not blank" as the backend decides it (str.strip), spelled out as a class: regex engines disagree on
# what \s means. Unanchored: the question must contain one such character.
NOT_BLANK_PATTERN = "[^" + "".join(f"\\u{c:04x}" for c in range(0x3001) if chr(c).isspace()) + "]"
NO_DOUBLE_DOT = r"\.\."

MAX_CONVERSATION_ID_LENGTH = 8192
# Container names are RFC 1123 labels.
CONTAINER_PATTERN = NAMESPACE_PATTERN
# A Git SHA, a tag or branch, a Helm chart version, an OCI digest: printable, no spaces, no "..".
REVISION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,254}$"

# Attachments: what the panel fetched from Argo CD's API under the user's own session.
MAX_ATTACHMENTS = 32
MAX_STATE_CHARS = 256 * 1024  # one resource's targetState or liveState (JSON text, as Argo CD sends it)
MAX_LOG_CHARS = 128 * 1024  # one container's attached log tail
MAX_MESSAGE_CHARS = 16 * 1024  # a commit message

# Why a field's pattern did not match, in words, keyed by field name.
PATTERN_MESSAGES = {
    "group": "not an API group",
    "version": "not an API version",
    "kind": "not a Kubernetes kind",
    "namespace": "not a namespace name",
    "name": "not a Kubernetes object name",
    "model": "not a model id",
    "container": "not a container name",
    "revision": "not a revision",
}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _json_integer(value: object) -> object:
    """JSON Schema's integer: 20 and 20.0, never true or "20" (pydantic's lax int takes both)."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


# ---- request ------------------------------------------------------------------------------------
class Resource(_Request):
    """The resource a question is about; absent means the Application itself."""

    group: str = Field("", max_length=253, pattern=GROUP_PATTERN)
    version: str = Field(max_length=24, pattern=VERSION_PATTERN)
    kind: str = Field(max_length=63, pattern=KIND_PATTERN)
    # Empty means cluster-scoped, like null.
    namespace: str | None = Field(None, max_length=63, pattern=f"^({NAMESPACE_PATTERN[1:-1]})?$")
    name: str = Field(
        max_length=253, pattern=NAME_PATTERN, json_schema_extra={"not": {"pattern": NO_DOUBLE_DOT}}
    )

    @field_validator("namespace")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("name")
    @classmethod
    def _no_double_dot(cls, value: str) -> str:
        if ".." in value:
            raise ValueError(PATTERN_MESSAGES["name"])
        return value

    def ref(self) -> ResourceRef:
        return ResourceRef(
            group=self.group, version=self.version, kind=self.kind, namespace=self.namespace, name=self.name
        )


class ManagedResourceAttachment(_Request):
    """One item of Argo CD's ``GET /api/v1/applications/{name}/managed-resources``: the desired state
    (``predictedLiveState``, else ``targetState``) and the live one (``normalizedLiveState``, else
    ``liveState``), as the JSON text Argo CD returns. The backend computes the diff from them."""

    type: Literal["managed_resource"]
    resource: Resource
    target: str | None = Field(None, max_length=MAX_STATE_CHARS, description="Desired state, JSON text")
    live: str | None = Field(None, max_length=MAX_STATE_CHARS, description="Live state, JSON text")


class RevisionAttachment(_Request):
    """Argo CD's ``GET /api/v1/applications/{name}/revisions/{revision}/metadata`` (RevisionMetadata)
    for a revision the Application is synced to."""

    type: Literal["revision"]
    revision: str = Field(max_length=255, pattern=REVISION_PATTERN)
    source_index: int | None = Field(None, ge=0, le=99, description="For multi-source Applications")
    author: str = Field("", max_length=1024)
    date: str | None = Field(None, max_length=64)
    message: str = Field("", max_length=MAX_MESSAGE_CHARS)
    tags: list[Annotated[str, Field(max_length=255)]] = Field(default_factory=list, max_length=50)

    @field_validator("source_index", mode="before")
    @classmethod
    def _source_index(cls, value: object) -> object:
        return _json_integer(value)


class LogsAttachment(_Request):
    """The ``content`` lines of Argo CD's ``GET /api/v1/applications/{name}/logs`` for one container
    (``follow=false``), joined by newlines."""

    type: Literal["logs"]
    resource: Resource = Field(description="The Pod")
    container: str | None = Field(
        None,
        max_length=63,
        pattern=CONTAINER_PATTERN,
        description="Null: the Pod's default container (Argo CD's tree does not name containers)",
    )
    previous: bool = Field(False, strict=True, description="The previous (crashed) instance's log")
    text: str = Field(max_length=MAX_LOG_CHARS)


Attachment = Annotated[
    ManagedResourceAttachment | RevisionAttachment | LogsAttachment, Field(discriminator="type")
]


class ChatRequest(_Request):
    """`POST /v1/chat`. The question's length limit is configured (`limits.max_question_chars`)."""

    question: str = Field(pattern=NOT_BLANK_PATTERN, description="Not blank")
    conversation_id: str | None = Field(
        None,
        max_length=MAX_CONVERSATION_ID_LENGTH,
        description="The `conversation_id` of the last `end` event",
    )
    resource: Resource | None = None
    model: str | None = Field(None, max_length=200, pattern=MODEL_PATTERN)
    attachments: list[Attachment] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="What the panel read from Argo CD's API with the user's session; each names a "
        "resource (or revision) of the Application. Their size has its own limit "
        "(`limits.max_attachments_bytes`).",
    )


# ---- JSON answers -------------------------------------------------------------------------------
class ErrorBody(_Answer):
    code: ErrorCode
    message: str


class ErrorResponse(_Answer):
    """Every error before a stream starts: `{"error": {"code", "message"}}`."""

    error: ErrorBody

    @classmethod
    def of(cls, code: ErrorCode, message: str) -> ErrorResponse:
        return cls(error=ErrorBody(code=code, message=message))


class ModelInfo(_Answer):
    id: str
    default: bool


class Models(_Answer):
    """`GET /v1/models`: the models the provider offers, the default marked."""

    models: list[ModelInfo]


class StoredTurn(_Answer):
    question: str = Field(description="As the user typed it, never the rendered context")
    answer: str


class Conversation(_Answer):
    """`GET /v1/conversations/{id}`: the caller's own conversation, to restore the panel."""

    conversation_id: str
    model: str
    turns: list[StoredTurn]


# ---- SSE events of POST /v1/chat: `event: <name>` + one JSON `data:` line -----------------------
class StartEvent(_Answer):
    conversation_id: str | None = Field(description="The id in use; null for a new conversation")
    provider: str
    model: str


class ContextItem(_Answer):
    kind: str = Field(description='e.g. "findings", "application", "status", "events", "logs"')
    ref: str = Field(description='Which object, e.g. "Pod shop/web-7d9c-x2 (v1)"')
    tokens: int
    truncated: bool
    redactions: int
    source: Literal["kubernetes", "argocd"] = Field(
        description="\"argocd\": attached by the panel from Argo CD's API under the user's session"
    )
    detail: str | None = Field(description="For a diff: the unified diff the model was shown")


class ContextEvent(_Answer):
    """What the model is shown for this turn."""

    items: list[ContextItem]
    tokens_total: int
    budget: int
    sent: bool = Field(description="False when the conversation already saw this context")
    notes: list[str] = Field(description="What could not be read, in plain words")


class TokenEvent(_Answer):
    text: str


class Usage(_Answer):
    input_tokens: int | None
    output_tokens: int | None


class EndEvent(_Answer):
    conversation_id: str = Field(description="Send this with the next turn (it moves on with each answer)")
    usage: Usage | None
    elapsed_ms: int


class ErrorEvent(ErrorBody):
    """The stream failed after it started; it closes after this event."""


EventName = Literal["start", "context", "token", "end", "error"]

EVENTS: dict[EventName, type[_Answer]] = {
    "start": StartEvent,
    "context": ContextEvent,
    "token": TokenEvent,
    "end": EndEvent,
    "error": ErrorEvent,
}

ANSWERS: tuple[type[_Answer], ...] = (ErrorResponse, Models, Conversation, *EVENTS.values())
