"""The legacy provider: Llama Stack's Agents API (0.2.x at ``/v1/agents``, 0.3.x at ``/v1alpha/agents``).

Facts this relies on (docs/upstream-facts.md, Llama Stack; re-checked against a real 0.3.5):
- the API is gone from 0.4 on, so this provider refuses such servers;
- only streaming turns work; the stream is ``data: {"event": {"payload": {...}}}`` lines with no
  ``event:`` lines and no ``[DONE]``; ``turn_start`` is never sent;
- 0.2.x sends an empty first text delta and tool-call arguments as an object, 0.3.x as a JSON string;
- the agent config holds the instructions and the session the history, so a turn sends only its
  new messages: a follow-up never resends the instructions;
- an agent is (model, instructions, sampling): we create one per such triple and reuse it, and one
  session per conversation; ``GET .../session/{s}`` returns the turns, ``DELETE`` forgets it (204);
  a session that does not exist answers 400 on 0.3.x.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import orjson

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
    context_message,
    is_context_message,
)
from .llamastack import LlamaStack, Version, api_error_from, upstream_turn
from .sse import data_batches

log = logging.getLogger(__name__)

AGENT_NAME = "argocd-assistant"


class UnsupportedServer(ApiError):
    """Llama Stack's version cannot serve this provider (start-up refuses it)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.NOT_READY, message)


def agents_path(version: Version) -> str:
    if version.at_least(0, 4):
        raise UnsupportedServer(
            f"provider 'agents' needs Llama Stack 0.2.x or 0.3.x, but the server runs {version.text}, "
            "where the Agents API was removed; use provider: responses"
        )
    return "/v1alpha/agents" if version.at_least(0, 3) else "/v1/agents"


def payload_of(data: Any) -> dict[str, Any]:
    """One decoded ``data:`` object of a turn stream -> its payload (or an ``{"error": ...}`` dict)."""
    if not isinstance(data, dict):
        raise ValueError("turn stream data is not an object")
    if "error" in data:
        return {"event_type": "error", "error": data["error"]}
    event = data.get("event")
    payload = event.get("payload") if isinstance(event, dict) else None
    if not isinstance(payload, dict):
        raise ValueError("turn stream event has no payload")
    return payload


def tool_call_arguments(tool_call: dict[str, Any]) -> dict[str, Any]:
    """0.2.x sends arguments as an object, 0.3.x as a JSON string; accept both."""
    arguments = tool_call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return {"_raw": arguments}
        return decoded if isinstance(decoded, dict) else {"_value": decoded}
    return arguments if isinstance(arguments, dict) else {}


async def parse_turn_events(
    batches: AsyncIterator[list[Any]], state: State
) -> AsyncGenerator[ProviderEvent, None]:
    """Agents turn-stream payloads (:mod:`.sse` decodes them) -> provider events; the text deltas of
    one batch become one event, so tokens already waiting cost one SSE write, not one each."""
    async for batch in batches:
        text: list[str] = []
        for data in batch:
            payload = payload_of(data)
            kind = payload.get("event_type")
            if kind == "step_progress":
                delta = payload.get("delta") or {}
                if delta.get("type") == "text" and delta.get("text"):
                    text.append(str(delta["text"]))
                elif delta.get("type") == "tool_call":
                    call = delta.get("tool_call")
                    if isinstance(call, dict):
                        log.info(
                            "model proposed tool call %s",
                            call.get("tool_name"),
                            extra={"arguments": sorted(tool_call_arguments(call))},
                        )
                continue
            if kind not in ("turn_complete", "turn_awaiting_input", "error"):
                continue
            if text:
                yield TextDelta("".join(text))
                text = []
            if kind == "turn_complete":
                yield Completed(state=state, usage=None)  # 0.3.x does not ask the model for usage
            elif kind == "turn_awaiting_input":
                yield Failed(
                    ErrorCode.LLAMA_STACK_ERROR, "the model asked for a tool this assistant does not offer"
                )
            else:
                log.warning("Llama Stack turn failed")
                yield Failed(ErrorCode.LLAMA_STACK_ERROR, "the model failed to answer")
            return
        if text:
            yield TextDelta(text[0] if len(text) == 1 else "".join(text))
    yield Failed(ErrorCode.LLAMA_STACK_ERROR, "the answer ended before it was complete")


class AgentsProvider:
    name = "agents"

    def __init__(self, stack: LlamaStack, http: httpx.AsyncClient) -> None:
        self._stack = stack
        self._http = http
        self._agents: dict[str, str] = {}
        self._agent_lock = asyncio.Lock()

    async def _base(self) -> str:
        return agents_path(await self._stack.version())

    async def probe(self) -> ServerInfo:
        version = await self._stack.version(refresh=True)
        agents_path(version)
        return ServerInfo(version=version.text)

    async def list_models(self) -> list[str]:
        return await self._stack.list_models()

    async def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise api_error_from(exc) from exc
        if response.status_code >= 400:
            log.warning("Llama Stack %s answered %s", path, response.status_code)
            raise ApiError(ErrorCode.LLAMA_STACK_ERROR, f"Llama Stack answered HTTP {response.status_code}")
        data = response.json()
        return data if isinstance(data, dict) else {}

    async def _agent_for(self, request: TurnRequest) -> str:
        sampling = _sampling(request)
        key = hashlib.sha256(
            json.dumps([request.model, request.instructions, sampling], sort_keys=True).encode()
        ).hexdigest()
        async with self._agent_lock:
            if key not in self._agents:
                config = {
                    "model": request.model,
                    "instructions": request.instructions,
                    "name": AGENT_NAME,
                    "sampling_params": sampling,
                    "max_infer_iters": 1,
                }
                created = await self._post_json(await self._base(), {"agent_config": config})
                self._agents[key] = str(created["agent_id"])
            return self._agents[key]

    async def open_turn(self, request: TurnRequest) -> UpstreamTurn:
        base = await self._base()
        state = dict(request.state or {})
        if not state:
            agent_id = await self._agent_for(request)
            created = await self._post_json(
                f"{base}/{agent_id}/session", {"session_name": "argocd-assistant"}
            )
            state = {"agent": agent_id, "session": str(created["session_id"])}
        messages: list[dict[str, str]] = []
        if request.context is not None:
            messages.append({"role": "user", "content": context_message(request.context)})
        messages.append({"role": "user", "content": request.question})
        url = f"{base}/{state['agent']}/session/{state['session']}/turn"
        body = orjson.dumps({"messages": messages, "stream": True})
        try:
            # On the stream pool (:mod:`.transport`): a cheaper read per chunk than httpx's.
            response = await self._stack.streams.post(url, body)
        except Exception as exc:
            raise api_error_from(exc) from exc
        if response.status >= 400:
            await response.error_text()
            await response.aclose()
            if response.status in (400, 404) and request.state:
                raise ApiError(ErrorCode.CONVERSATION_NOT_FOUND, "conversation not found")
            raise ApiError(ErrorCode.LLAMA_STACK_ERROR, f"Llama Stack answered HTTP {response.status}")
        events = parse_turn_events(data_batches(response.chunks()), state)
        return upstream_turn(events, response.aclose, "turn stream")

    async def _session(self, state: State) -> httpx.Response | None:
        """The session as Llama Stack holds it; None if it does not (0.3.x answers 400 "not found or
        access denied", 0.2.x 404)."""
        base = await self._base()
        try:
            response = await self._http.get(f"{base}/{state['agent']}/session/{state['session']}")
        except httpx.HTTPError as exc:
            raise api_error_from(exc) from exc
        if response.status_code in (400, 404):
            return None
        if response.status_code >= 400:
            raise ApiError(ErrorCode.LLAMA_STACK_ERROR, f"Llama Stack answered HTTP {response.status_code}")
        return response

    async def turns(self, state: State) -> list[Turn]:
        response = await self._session(state)
        if response is None:
            raise ApiError(ErrorCode.CONVERSATION_NOT_FOUND, "conversation not found")
        turns: list[Turn] = []
        for turn in response.json().get("turns", []):
            questions = [
                str(m.get("content", ""))
                for m in turn.get("input_messages", [])
                if m.get("role") == "user" and not is_context_message(str(m.get("content", "")))
            ]
            output = turn.get("output_message") or {}
            turns.append(
                Turn(question=questions[-1] if questions else "", answer=str(output.get("content", "")))
            )
        return turns

    async def exists(self, state: State) -> bool:
        return await self._session(state) is not None

    async def forget(self, state: State) -> None:
        base = await self._base()
        try:
            response = await self._http.delete(f"{base}/{state['agent']}/session/{state['session']}")
        except httpx.HTTPError as exc:
            raise api_error_from(exc) from exc
        if response.status_code >= 400 and response.status_code not in (400, 404):
            raise ApiError(ErrorCode.LLAMA_STACK_ERROR, f"Llama Stack answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self._stack.aclose()


def _sampling(request: TurnRequest) -> dict[str, Any]:
    strategy: dict[str, Any]
    if request.temperature <= 0:
        strategy = {"type": "greedy"}
    else:
        strategy = {"type": "top_p", "temperature": request.temperature, "top_p": 0.95}
    return {"strategy": strategy, "max_tokens": request.max_tokens}
