"""Fixtures of the Llama Stack tier beyond the shared ones in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.backend import UNLIMITED, BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer


@pytest.fixture(scope="module")
def abuse_backend(llama_stack_073: LlamaStackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """A real backend (responses provider, Llama Stack 0.7.3, the scripted model) for hostile requests.

    One per module: the tables send dozens of requests, and starting a backend per case would only
    slow them down. Per-user limits are off (a module that tests them starts its own backend); the
    body read timeout is short for the slow-body cases."""
    config = backend_config(llama_stack_073.url, "responses", limits={**UNLIMITED, "body_read_timeout_s": 2})
    with BackendProcess(config, tmp_path_factory.mktemp("abuse")) as backend:
        yield backend
