"""The recommended provider: OpenAI's Responses API as Llama Stack serves it.

Facts this relies on (checked against real 0.3.5 and 0.7.3 servers):
- base path ``/v1/openai/v1`` on 0.2.x, ``/v1`` later;
- iterate ``responses.create(stream=True)``: 0.2.x's short event sequence breaks the SDK's
  ``responses.stream()`` helper;
- ``instructions`` are not carried over by ``previous_response_id``: send them every turn;
- the response object echoes ``previous_response_id: null`` even for follow-ups, so a chain cannot be
  walked backwards: the conversation state keeps every response id, which ``forget`` deletes;
- ``input_items`` of the latest response list the whole chain's inputs and outputs, oldest first
  with ``order=asc``;
- a failure inside the stream is ``response.failed`` (0.3.x) or a bare ``{"error": ...}`` data line
  (0.7.x), which the SDK raises as ``openai.APIError``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import openai

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
from .llamastack import LlamaStack, api_error_from, build_openai_http_client

log = logging.getLogger(__name__)

# A long conversation's state carries every response id; past this many only the newest are kept,
# so the oldest turns may outlive a "forget" (they stay unreachable to users, but stored).
MAX_TRACKED_RESPONSES = 64


_SAMPLE_RESPONSE: dict[str, Any] = {
    "id": "resp_warm",
    "object": "response",
    "created_at": 0,
    "model": "warm-up",
    "parallel_tool_calls": False,
    "tool_choice": "auto",
    "tools": [],
    "status": "completed",
    "output": [
        {
            "type": "message",
            "id": "msg_warm",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        }
    ],
    "usage": {
        "input_tokens": 1,
        "output_tokens": 1,
        "total_tokens": 2,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}


def _warm_sdk_types() -> None:
    """Build the SDK's lazily built stream-event parsers once, at start.

    Otherwise the first ``response.completed`` the process parses costs 0.3-0.9 s of CPU on the
    event loop, and every stream in flight freezes for that long (bench/concurrency.py showed a
    ~0.9 s gap in all 50 streams of the first burst). An optimisation only: never fatal.
    """
    try:
        from openai._models import construct_type
        from openai.types.responses import ResponseStreamEvent

        for event in (
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**_SAMPLE_RESPONSE, "output": []},
            },
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "msg_warm",
                "output_index": 0,
                "content_index": 0,
                "delta": "ok",
                "logprobs": [],
            },
            {"type": "response.completed", "sequence_number": 2, "response": _SAMPLE_RESPONSE},
        ):
            construct_type(type_=ResponseStreamEvent, value=event)
    except Exception:  # the SDK moved its internals: lose the warm-up, not the service
        log.debug("could not warm the OpenAI SDK's types", exc_info=True)


class ResponsesProvider:
    name = "responses"

    def __init__(self, stack: LlamaStack, config: LlamaStackConfig) -> None:
        self._stack = stack
        self._config = config
        self._client: openai.AsyncOpenAI | None = None
        _warm_sdk_types()

    async def _openai(self) -> openai.AsyncOpenAI:
        if self._client is None:
            version = await self._stack.version()
            if self._client is not None:  # another request created it while we awaited
                return self._client
            prefix = "/v1" if version.at_least(0, 3) else "/v1/openai/v1"
            config = self._config
            # openai 3.x runs on its own HTTP stack (httpx2), so it gets its own pooled client.
            self._client = openai.AsyncOpenAI(
                base_url=config.url + prefix,
                api_key=config.resolved_api_key() or "none",
                timeout=openai.Timeout(config.timeout_s, connect=config.connect_timeout_s),
                max_retries=0,  # retrying a streamed answer would duplicate text; fail fast instead
                http_client=build_openai_http_client(),  # retries a failed connect only
            )
        return self._client

    async def probe(self) -> ServerInfo:
        version = await self._stack.version(refresh=True)
        return ServerInfo(version=version.text)

    async def list_models(self) -> list[str]:
        return await self._stack.list_models()

    async def open_turn(self, request: TurnRequest) -> UpstreamTurn:
        client = await self._openai()
        messages: list[dict[str, str]] = []
        if request.context is not None:
            messages.append({"role": "user", "content": context_message(request.context)})
        messages.append({"role": "user", "content": request.question})
        previous_ids: list[str] = list((request.state or {}).get("responses", []))
        arguments: dict[str, Any] = {
            "model": request.model,
            "input": messages,
            "instructions": request.instructions,
            "temperature": request.temperature,
            "max_output_tokens": request.max_tokens,
            "store": True,
            "stream": True,
        }
        if previous_ids:
            arguments["previous_response_id"] = previous_ids[-1]
        try:
            stream = await client.responses.create(**arguments)
        except Exception as exc:
            raise api_error_from(exc) from exc
        return UpstreamTurn(self._events(stream, previous_ids), stream.close)

    async def _events(self, stream: Any, previous_ids: list[str]) -> AsyncGenerator[ProviderEvent, None]:
        completed: Completed | None = None
        try:
            async for event in stream:
                kind = getattr(event, "type", "")
                if kind == "response.output_text.delta":
                    if event.delta:
                        yield TextDelta(event.delta)
                elif kind == "response.completed":
                    response = event.response
                    ids = [*previous_ids, response.id][-MAX_TRACKED_RESPONSES:]
                    usage = None
                    if response.usage is not None:
                        usage = Usage(response.usage.input_tokens, response.usage.output_tokens)
                    # Don't stop here: Llama Stack stores the response after this event, inside the
                    # stream, and closing now races (or cancels) that write, so a follow-up or a
                    # restore would not find it. The stream ends once it is stored.
                    completed = Completed(state={"responses": ids}, usage=usage)
                elif kind in ("response.failed", "response.incomplete", "error"):
                    log.warning("Llama Stack reported %s", kind)
                    yield Failed(ErrorCode.LLAMA_STACK_ERROR, "the model failed to answer")
                    return
            if completed is not None:
                yield completed
            else:
                yield Failed(ErrorCode.LLAMA_STACK_ERROR, "the answer ended before it was complete")
        except Exception as exc:  # every upstream failure becomes an error event
            error = api_error_from(exc)
            log.warning("Llama Stack stream failed: %s", type(exc).__name__)
            yield Failed(error.code, error.message)

    async def turns(self, state: State) -> list[Turn]:
        ids = list(state.get("responses", []))
        if not ids:
            return []
        client = await self._openai()
        try:
            last = await client.responses.retrieve(ids[-1])
        except (openai.NotFoundError, openai.BadRequestError):  # 0.3.x answers 400 for an unknown id
            raise ApiError(ErrorCode.CONVERSATION_NOT_FOUND, "conversation not found") from None
        except Exception as exc:
            raise api_error_from(exc) from exc
        entries: list[dict[str, Any]] = []
        try:
            # Servers cap a page at 100 items; the SDK's paginator follows the cursor.
            async for item in client.responses.input_items.list(ids[-1], order="asc", limit=100):
                entries.append(item.model_dump())
        except Exception as exc:
            raise api_error_from(exc) from exc
        entries.extend(item.model_dump() for item in last.output)
        return turns_from_items(entries)

    async def exists(self, state: State) -> bool:
        ids = list(state.get("responses", []))
        if not ids:
            return False
        client = await self._openai()
        try:
            await client.responses.retrieve(ids[-1])  # forget() deletes every id, the last one too
        except (openai.NotFoundError, openai.BadRequestError):  # 0.3.x answers 400 for an unknown id
            return False
        except Exception as exc:
            raise api_error_from(exc) from exc
        return True

    async def forget(self, state: State) -> None:
        client = await self._openai()
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
