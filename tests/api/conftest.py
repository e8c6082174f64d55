"""The in-process tier: every test gets the HTTP API over fakes (``tests/support/inprocess.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.inprocess import Api, running_api


@pytest.fixture
def api() -> Iterator[Api]:
    with running_api() as running:
        yield running
