"""The model catalogue: which models Llama Stack offers (cached briefly) and which one a request gets."""

from __future__ import annotations

import asyncio
import time

from .errors import ApiError, ErrorCode
from .providers.base import Provider

CACHE_S = 30.0


class ModelCatalogue:
    def __init__(self, provider: Provider, configured_default: str | None) -> None:
        self._provider = provider
        self._configured_default = configured_default
        self._models: list[str] = []
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def models(self, *, refresh: bool = False) -> list[str]:
        async with self._lock:  # one fetch for many concurrent callers
            if refresh or not self._models or time.monotonic() - self._fetched_at > CACHE_S:
                self._models = await self._provider.list_models()
                self._fetched_at = time.monotonic()
            return list(self._models)

    async def default(self) -> str:
        models = await self.models()
        configured = self._configured_default
        if configured is not None:
            if configured not in models and configured not in await self.models(refresh=True):
                # Llama Stack would fail every turn inside the stream: say so at readiness instead.
                raise ApiError(
                    ErrorCode.NOT_READY,
                    f"configured llama_stack.model {configured!r} is not offered by Llama Stack; "
                    f"available: {', '.join(models) or 'none'}",
                )
            return configured
        if not models:
            raise ApiError(ErrorCode.LLAMA_STACK_ERROR, "Llama Stack lists no LLM")
        return models[0]

    async def resolve(self, requested: str | None) -> str:
        """The model to use: the requested one if the server has it, else the default."""
        if requested is None:
            return await self.default()
        if requested in await self.models():
            return requested
        fresh = await self.models(refresh=True)  # it may have been registered a moment ago
        if requested in fresh:
            return requested
        raise ApiError(
            ErrorCode.UNKNOWN_MODEL, f"unknown model {requested!r}; available: {', '.join(fresh) or 'none'}"
        )
