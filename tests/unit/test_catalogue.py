"""Which model a request gets, and a configured model the server does not offer."""

from __future__ import annotations

import pytest

from assistant_backend.catalogue import ModelCatalogue
from assistant_backend.errors import ApiError, ErrorCode


class ListedModels:
    """Only the slice of the provider protocol the catalog uses: the server's model list."""

    name = "responses"

    def __init__(self, models: list[str]) -> None:
        self.models = models

    async def list_models(self) -> list[str]:
        return list(self.models)


async def test_first_listed_model_is_the_default() -> None:
    catalog = ModelCatalogue(ListedModels(["a", "b"]), None)  # type: ignore[arg-type]
    assert await catalog.default() == "a"
    assert await catalog.resolve("b") == "b"


async def test_unknown_requested_model_lists_the_available_ones() -> None:
    with pytest.raises(ApiError) as raised:
        await ModelCatalogue(ListedModels(["a", "b"]), None).resolve("c")  # type: ignore[arg-type]
    assert raised.value.code is ErrorCode.UNKNOWN_MODEL and "a, b" in raised.value.message


async def test_configured_model_missing_from_the_server_is_not_ready() -> None:
    catalog = ModelCatalogue(ListedModels(["a"]), "gone")  # type: ignore[arg-type]
    with pytest.raises(ApiError) as raised:
        await catalog.default()
    assert raised.value.code is ErrorCode.NOT_READY
    assert "llama_stack.model 'gone'" in raised.value.message and "available: a" in raised.value.message
    assert await ModelCatalogue(ListedModels(["a", "gone"]), "gone").default() == "gone"  # type: ignore[arg-type]
