"""Context for the model: what to show it about the Application and the selected resource."""

from .base import ContextBundle, ContextItem, ContextSource, ResourceRef

__all__ = ["ContextBundle", "ContextItem", "ContextSource", "ResourceRef"]
