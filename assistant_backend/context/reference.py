"""The smallest honest context: which Application (and resource) the question is about.

Used when no Kubernetes access is configured; the model is told plainly that it has no live state.
Attachments are not used: without the Application they cannot be checked against its scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..identity import Caller
from .base import ContextBundle, ContextItem, ResourceRef
from .tokens import estimate_tokens

if TYPE_CHECKING:
    from ..wire import Attachment


class ReferenceContext:
    def __init__(self, budget: int) -> None:
        self._budget = budget

    async def build(
        self,
        caller: Caller,
        resource: ResourceRef | None,
        question: str,
        attachments: Sequence[Attachment] = (),
    ) -> ContextBundle:
        subject = str(resource) if resource else f"the Application {caller.application}"
        text = (
            f"Argo CD Application: {caller.application} (project {caller.project})\n"
            f"The question is about: {subject}\n"
            "No live Kubernetes state could be read for this question."
        )
        ref = str(resource) if resource else f"Application {caller.application}"
        item = ContextItem(kind="application", ref=ref, tokens=estimate_tokens(text))
        notes = ["live Kubernetes state not available"]
        if attachments:
            notes.append("the attachments from Argo CD were not used: the Application cannot be read")
        return ContextBundle(text=text, items=(item,), budget=self._budget, notes=tuple(notes))

    async def aclose(self) -> None:
        return None
