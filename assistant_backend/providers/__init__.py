"""Providers: how the chat path reaches Llama Stack (``responses`` or ``agents``)."""

from __future__ import annotations

import httpx

from ..config import ProviderName, Settings
from .agents import AgentsProvider
from .base import Provider
from .llamastack import LlamaStack
from .responses import ResponsesProvider


def build_provider(settings: Settings, http: httpx.AsyncClient) -> Provider:
    stack = LlamaStack(http)
    if settings.provider is ProviderName.AGENTS:
        return AgentsProvider(stack, http)
    return ResponsesProvider(stack, settings.llama_stack)


__all__ = ["Provider", "build_provider"]
