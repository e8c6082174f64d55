"""The smallest honest context: which Application (and resource) the question is about.

Used when no Kubernetes access is configured; the model is told plainly that it has no live state.
"""

from __future__ import annotations

from ..identity import Caller
from .base import ContextBundle, ContextItem, ResourceRef
from .tokens import estimate_tokens


class ReferenceContext:
    def __init__(self, budget: int) -> None:
        self._budget = budget

    async def build(self, caller: Caller, resource: ResourceRef | None, question: str) -> ContextBundle:
        subject = str(resource) if resource else f"the Application {caller.application}"
        text = (
            f"Argo CD Application: {caller.application} (project {caller.project})\n"
            f"The question is about: {subject}\n"
            "No live Kubernetes state could be read for this question."
        )
        ref = str(resource) if resource else f"Application {caller.application}"
        item = ContextItem(kind="application", ref=ref, tokens=estimate_tokens(text))
        return ContextBundle(
            text=text, items=(item,), budget=self._budget, notes=("live Kubernetes state not available",)
        )

    async def aclose(self) -> None:
        return None
