"""One chat turn: everything that can refuse happens in ``prepare``; ``events`` only streams.

``prepare`` opens the conversation handle, picks the model, builds the context and opens the
upstream stream. Any failure there is an :class:`ApiError` the app answers as JSON with the right
status. ``events`` then relays the provider's events as SSE; a failure from that point on is an
``error`` event. The caller owns the open upstream turn: ``stream.TurnResponse`` closes it however the
response ends, so a client that goes away cancels the upstream request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from . import stream
from .catalogue import ModelCatalogue
from .config import ProviderName, Settings
from .context.base import ContextBundle, ContextSource
from .conversations import Conversation, Handles
from .errors import ApiError, ErrorCode
from .identity import Caller
from .metrics import Metrics
from .providers.base import (
    Completed,
    Failed,
    Provider,
    TextDelta,
    TurnRequest,
    UpstreamTurn,
    neutralise_markers,
)
from .wire import ChatRequest


@dataclass(frozen=True, slots=True)
class PreparedTurn:
    caller: Caller
    conversation_id: str | None
    model: str
    bundle: ContextBundle
    context_sent: bool
    upstream: UpstreamTurn
    started: float


async def _true() -> bool:
    return True


class ChatService:
    def __init__(
        self,
        settings: Settings,
        provider: Provider,
        context: ContextSource,
        handles: Handles,
        catalogue: ModelCatalogue,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._context = context
        self._handles = handles
        self._catalogue = catalogue
        self._metrics = metrics

    async def prepare(self, caller: Caller, request: ChatRequest) -> PreparedTurn:
        started = time.perf_counter()
        conversation: Conversation | None = None
        if request.conversation_id:
            conversation = self._handles.open(caller, request.conversation_id, self._provider.name)
        model = await self._pick_model(request, conversation)

        with self._metrics.context_seconds.time():
            # A deleted conversation's handle still verifies: ask Llama Stack while the context builds.
            bundle, alive = await asyncio.gather(
                self._context.build(
                    caller,
                    request.resource.ref() if request.resource else None,
                    request.question,
                    request.attachments,
                ),
                self._provider.exists(conversation.state) if conversation else _true(),
            )
        if not alive:
            raise ApiError(ErrorCode.CONVERSATION_NOT_FOUND, "conversation not found")
        # Context goes in once per conversation, and again only when it changed.
        unchanged = conversation is not None and conversation.context_fingerprint == bundle.fingerprint
        if not unchanged:
            self._metrics.context_tokens.inc(bundle.tokens_total)

        llama = self._settings.llama_stack
        upstream = await self._provider.open_turn(
            TurnRequest(
                model=model,
                # A question cannot open or close the context frame either (nor hide from restore).
                question=neutralise_markers(request.question),
                instructions=self._settings.instructions,
                context=None if unchanged else bundle.text,
                state=conversation.state if conversation else None,
                temperature=llama.temperature,
                max_tokens=llama.max_tokens,
            )
        )
        return PreparedTurn(caller, request.conversation_id, model, bundle, not unchanged, upstream, started)

    async def _pick_model(self, request: ChatRequest, conversation: Conversation | None) -> str:
        if conversation is None:
            return await self._catalogue.resolve(request.model)
        if request.model is None or request.model == conversation.model:
            return conversation.model
        if self._provider.name == ProviderName.AGENTS:
            # An agent is bound to its model; the session cannot move to another one.
            raise ApiError(
                ErrorCode.INVALID_REQUEST, "model: cannot change within a conversation; start a new one"
            )
        return await self._catalogue.resolve(request.model)

    async def events(self, turn: PreparedTurn) -> AsyncGenerator[bytes, None]:
        provider = self._provider.name
        yield stream.start(turn.conversation_id, provider, turn.model)
        yield stream.context(turn.bundle, sent=turn.context_sent)
        first_token = True
        outcome = "cancelled"
        self._metrics.active_streams.inc()
        try:
            async for event in turn.upstream:
                if isinstance(event, TextDelta):
                    if first_token:
                        self._metrics.time_to_first_token.labels(provider).observe(
                            time.perf_counter() - turn.started
                        )
                        first_token = False
                    yield stream.token(event.text)
                elif isinstance(event, Completed):
                    outcome = "ok"
                    handle = self._handles.issue(
                        turn.caller,
                        Conversation(provider, turn.model, event.state, turn.bundle.fingerprint),
                    )
                    if event.usage is not None:
                        tokens = self._metrics.llm_tokens
                        tokens.labels(provider, "in").inc(event.usage.input_tokens or 0)
                        tokens.labels(provider, "out").inc(event.usage.output_tokens or 0)
                    elapsed_ms = int((time.perf_counter() - turn.started) * 1000)
                    yield stream.end(handle, event.usage, elapsed_ms)
                    return
                elif isinstance(event, Failed):
                    outcome = "failed"
                    self._metrics.llm_failures.labels(provider, event.code.value).inc()
                    yield stream.error(event.code, event.message)
                    return
            outcome = "failed"
            yield stream.error(ErrorCode.LLAMA_STACK_ERROR, "the answer ended before it was complete")
        finally:
            # Accounting only: the upstream connection is closed by the response (stream.TurnResponse).
            self._metrics.active_streams.dec()
            self._metrics.llm_calls.labels(provider, outcome).inc()
