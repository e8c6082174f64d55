"""Chooses the context source for the configured deployment; the app calls this once at start."""

from __future__ import annotations

from ..config import Settings
from .base import ContextSource
from .engine import KubeContext
from .reference import ReferenceContext


def build_context_source(settings: Settings) -> ContextSource:
    if not settings.kubernetes.enabled:
        return ReferenceContext(budget=settings.context.token_budget)
    # Reads the kubeconfig (blocking) once, at start; with no Kubernetes access the engine still
    # builds and every bundle says so.
    source = KubeContext.from_settings(settings)
    source.start()  # the control-plane cache lists and watches in the background from now on
    return source
