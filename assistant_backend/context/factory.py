"""Chooses the context source for the configured deployment; the app calls this once at start."""

from __future__ import annotations

from ..config import Settings
from .base import ContextSource
from .reference import ReferenceContext


def build_context_source(settings: Settings) -> ContextSource:
    return ReferenceContext(budget=settings.context.token_budget)
