"""The recommended provider: OpenAI's Responses API as Llama Stack serves it.

Facts this relies on (checked against real 0.3.5 and 0.7.3 servers; docs/upstream-facts.md, Llama Stack):
- base path ``/v1/openai/v1`` on 0.2.x, ``/v1`` later;
- the stream is ``data:`` JSON lines with a ``type``; 0.2.x sends only created / delta / completed;
- ``instructions`` are not carried over by ``previous_response_id``, and neither is a ``system``
  input item (stored, but dropped from the history a follow-up sends the model), while a
  ``developer`` input item is carried: on 0.3.x and later the first turn sends the instructions as
  one, so follow-ups send only the question (see :func:`instructions_plan`);
- the response object echoes ``previous_response_id: null`` even for follow-ups, so a chain cannot be
  walked backwards: the conversation state keeps every response id, which ``forget`` deletes;
- ``input_items`` of the latest response list the whole chain's inputs and outputs, oldest first
  with ``order=asc``;
- a failure inside the stream is ``response.failed`` (0.3.x) or a bare ``{"error": ...}`` data line
  (0.7.x).

The SDK serves the stored conversation's calls (read, delete). The streamed answer bypasses it:
its body is built here and posted on the stream pool (:mod:`.transport`, aiohttp: a cheaper read
per chunk than the SDK's httpx2, and several waiting events per read), and read raw: the SDK would
validate a pydantic object per event, which was most of the relay's CPU per token and ~36 MB of RSS
for its lazily built validators. Only ``type``, ``delta``, ``response.id`` and ``response.usage``
are read (:mod:`.sse`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..config import LlamaStackConfig
from ..errors import ApiError, ErrorCode
from .base import (
    Completed,
    Failed,
    ProviderEvent,
    ServerInfo,
    State,
    TextDelta,
    Turn,
    TurnRequest,
    UpstreamTurn,
    Usage,
    context_message,
    is_context_message,
)
from .llamastack import LlamaStack, Version, api_error_from, build_openai_http_client, upstream_turn
from .sse import data_batches

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

# A long conversation's state carries every response id; past this many only the newest are kept,
# so the oldest turns may outlive a "forget" (they stay unreachable to users, but stored).
MAX_TRACKED_RESPONSES = 64

# Stream event types that end a turn without an answer.
_FAILURES = frozenset(("response.failed", "response.incomplete", "error"))


def instructions_digest(instructions: str) -> str:
    """A short fingerprint of the instructions a conversation was started with (kept in its state)."""
    return hashlib.sha256(instructions.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class InstructionsPlan:
    """Where this turn's instructions go: a ``developer`` input item stored with the conversation
    (``as_item``), the ``instructions`` field (``as_field``), or nowhere (already in the history)."""

    as_item: bool
    as_field: bool
    digest: str | None  # kept in the state when the history carries the instructions


def instructions_plan(version: Version, instructions: str, state: State | None) -> InstructionsPlan:
    """Send the instructions once where Llama Stack carries them, every turn where it does not.

    Carried (verified on 0.3.5 and 0.7.3): a ``developer`` item of the first turn's input, which
    ``previous_response_id`` replays to the model on every follow-up. 0.2.x is unverified, and a
    conversation started before this (no digest in its state) or with other instructions (the
    configuration changed) has no such item with these instructions: those resend the field.
    """
    digest = instructions_digest(instructions)
    if not version.at_least(0, 3):
        return InstructionsPlan(as_item=False, as_field=True, digest=None)
    if not state or not state.get("responses"):
        return InstructionsPlan(as_item=True, as_field=False, digest=digest)
    if state.get("instructions") == digest:
        return InstructionsPlan(as_item=False, as_field=False, digest=digest)
    return InstructionsPlan(as_item=False, as_field=True, digest=state.get("instructions"))


def parse_events(
    batches: AsyncIterator[list[Any]], previous_ids: list[str], extra_state: dict[str, str]
) -> AsyncGenerator[ProviderEvent, None]:
    """Responses stream payloads -> provider events; deltas that arrived together become one."""
    return _parse(batches, previous_ids, extra_state)


async def _parse(
    batches: AsyncIterator[list[Any]], previous_ids: list[str], extra_state: dict[str, str]
) -> AsyncGenerator[ProviderEvent, None]:
    completed: Completed | None = None
    async for batch in batches:
        text: list[str] = []
        for event in batch:
            if not isinstance(event, dict):
                raise ValueError("stream data is not an object")
            kind = event.get("type")
            if kind == "response.output_text.delta":
                delta = event.get("delta")
                if delta and isinstance(delta, str):
                    text.append(delta)
            elif kind == "response.completed":
                completed = _completed(event.get("response"), previous_ids, extra_state)
            elif kind in _FAILURES or (kind is None and "error" in event):
                if text:
                    yield TextDelta("".join(text))
                log.warning("Llama Stack reported %s", kind or "error")
                yield Failed(ErrorCode.LLAMA_STACK_ERROR, "the model failed to answer")
                return
        if text:
            yield TextDelta(text[0] if len(text) == 1 else "".join(text))
    # Reported only at the end of the stream: Llama Stack stores the response after
    # ``response.completed``, inside the stream, and closing at that event races (or cancels) the
    # write, so a follow-up or a restore would not find it.
    if completed is not None:
        yield completed
    else:
        yield Failed(ErrorCode.LLAMA_STACK_ERROR, "the answer ended before it was complete")


def _completed(response: Any, previous_ids: list[str], extra_state: dict[str, str]) -> Completed:
    if not isinstance(response, dict) or not isinstance(response.get("id"), str):
        raise ValueError("response.completed without a response id")
    ids = [*previous_ids, response["id"]][-MAX_TRACKED_RESPONSES:]
    usage = None
    raw = response.get("usage")
    if isinstance(raw, dict):
        inputs, outputs = raw.get("input_tokens"), raw.get("output_tokens")
        usage = Usage(
            inputs if isinstance(inputs, int) else None, outputs if isinstance(outputs, int) else None
        )
    return Completed(state={"responses": ids, **extra_state}, usage=usage)


class ResponsesProvider:
    name = "responses"

    def __init__(self, stack: LlamaStack, config: LlamaStackConfig) -> None:
        # The SDK's import is ~1 s of CPU and ~45 MB (it loads every API's types): paid here, at
        # start, and only by processes that use this provider, never inside a request.
        import openai

        self._openai_module = openai
        self._stack = stack
        self._config = config
        self._client: openai.AsyncOpenAI | None = None

    async def _prefix(self) -> str:
        return "/v1" if (await self._stack.version()).at_least(0, 3) else "/v1/openai/v1"

    async def _openai(self) -> openai.AsyncOpenAI:
        if self._client is None:
            prefix = await self._prefix()
            if self._client is not None:  # another request created it while we awaited
                return self._client
            config = self._config
            openai = self._openai_module
            timeout = openai.Timeout(config.timeout_s, connect=config.connect_timeout_s)
            self._client = openai.AsyncOpenAI(
                base_url=config.url + prefix,
                api_key=config.resolved_api_key() or "none",
                timeout=timeout,
                max_retries=0,  # retrying a streamed answer would duplicate text; fail fast instead
                # Retries a failed connect only (never a request whose bytes were sent).
                http_client=build_openai_http_client(),
            )
        return self._client

    async def probe(self) -> ServerInfo:
        version = await self._stack.version(refresh=True)
        return ServerInfo(version=version.text)

    async def list_models(self) -> list[str]:
        return await self._stack.list_models()

    async def open_turn(self, request: TurnRequest) -> UpstreamTurn:
        prefix = await self._prefix()
        plan = instructions_plan(await self._stack.version(), request.instructions, request.state)
        messages: list[dict[str, str]] = []
        if plan.as_item:
            messages.append({"role": "developer", "content": request.instructions})
        if request.context is not None:
            messages.append({"role": "user", "content": context_message(request.context)})
        messages.append({"role": "user", "content": request.question})
        previous_ids: list[str] = list((request.state or {}).get("responses", []))
        body: dict[str, Any] = {
            "model": request.model,
            "input": messages,
            "temperature": request.temperature,
            "max_output_tokens": request.max_tokens,
            "store": True,
            "stream": True,
        }
        if plan.as_field:
            body["instructions"] = request.instructions
        if previous_ids:
            body["previous_response_id"] = previous_ids[-1]
        try:
            # Not ``responses.create``: that walks the body against the whole typed schema of the
            # Responses API (~1 ms of CPU per turn for a body we build ourselves).
            response = await self._stack.streams.post(prefix + "/responses", orjson.dumps(body))
        except Exception as exc:
            raise api_error_from(exc) from exc
        if response.status >= 400:
            detail = await response.error_text()
            await response.aclose()
            log.warning("Llama Stack /responses answered %s: %s", response.status, detail[:300])
            raise ApiError(ErrorCode.LLAMA_STACK_ERROR, f"Llama Stack answered HTTP {response.status}")
        extra_state = {"instructions": plan.digest} if plan.digest else {}
        events = parse_events(data_batches(response.chunks()), previous_ids, extra_state)
        return upstream_turn(events, response.aclose, "stream")

    async def turns(self, state: State) -> list[Turn]:
        ids = list(state.get("responses", []))
        if not ids:
            return []
        client = await self._openai()
        openai = self._openai_module
        # Plain JSON, not the SDK's types: their validators are built lazily, tens of MB on first use.
        try:
            last = await client.get(f"/responses/{ids[-1]}", cast_to=object)
        except (openai.NotFoundError, openai.BadRequestError):  # 0.3.x answers 400 for an unknown id
            raise ApiError(ErrorCode.CONVERSATION_NOT_FOUND, "conversation not found") from None
        except Exception as exc:
            raise api_error_from(exc) from exc
        entries: list[dict[str, Any]] = []
        params: dict[str, str | int] = {"order": "asc", "limit": 100}  # servers cap a page at 100
        try:
            while True:
                page = await client.get(
                    f"/responses/{ids[-1]}/input_items", cast_to=object, options={"params": params}
                )
                items = page.get("data", []) if isinstance(page, dict) else []
                entries.extend(item for item in items if isinstance(item, dict))
                if not (isinstance(page, dict) and page.get("has_more") and items):
                    break
                params = {**params, "after": str(page.get("last_id") or items[-1].get("id"))}
        except Exception as exc:
            raise api_error_from(exc) from exc
        output = last.get("output", []) if isinstance(last, dict) else []
        entries.extend(item for item in output if isinstance(item, dict))
        return turns_from_items(entries)

    async def exists(self, state: State) -> bool:
        ids = list(state.get("responses", []))
        if not ids:
            return False
        client = await self._openai()
        openai = self._openai_module
        try:
            # Plain JSON (see turns): forget() deletes every id, the last one too.
            await client.get(f"/responses/{ids[-1]}", cast_to=object)
        except (openai.NotFoundError, openai.BadRequestError):  # 0.3.x answers 400 for an unknown id
            return False
        except Exception as exc:
            raise api_error_from(exc) from exc
        return True

    async def forget(self, state: State) -> None:
        client = await self._openai()
        openai = self._openai_module
        for response_id in state.get("responses", []):
            try:
                await client.responses.delete(response_id)
            except (openai.NotFoundError, openai.BadRequestError):
                continue  # already gone
            except Exception as exc:
                raise api_error_from(exc) from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        await self._stack.aclose()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def turns_from_items(items: list[dict[str, Any]]) -> list[Turn]:
    """Pair each question the user typed with the answer after it; context messages are skipped."""
    turns: list[Turn] = []
    question: str | None = None
    answer_parts: list[str] = []
    for item in items:
        if item.get("type", "message") != "message":
            continue
        text = _text_of(item.get("content"))
        if item.get("role") == "user":
            if is_context_message(text):
                continue
            if question is not None:
                turns.append(Turn(question=question, answer="".join(answer_parts)))
            question, answer_parts = text, []
        elif item.get("role") == "assistant" and question is not None:
            answer_parts.append(text)
    if question is not None:
        turns.append(Turn(question=question, answer="".join(answer_parts)))
    return turns
