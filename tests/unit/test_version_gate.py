"""The /readyz version gate: each provider's supported Llama Stack range, refusals naming the version."""

from __future__ import annotations

import pytest

from assistant_backend.providers.llamastack import Version
from assistant_backend.readiness import SUPPORTED, version_refusal


@pytest.mark.parametrize("version", ["0.2.12", "0.2.24", "0.3.5", "0.4.7", "0.6.1", "0.7.3", "0.8.0", "1.5.0"])
def test_responses_accepts_llama_stack_0_2_to_ogx_1(version: str) -> None:
    assert version_refusal("responses", Version.parse(version)) is None


@pytest.mark.parametrize("version", ["0.1.9", "2.0.0", "3.1.4"])
def test_responses_refuses_outside_its_range_naming_the_version(version: str) -> None:
    refusal = version_refusal("responses", Version.parse(version))
    assert refusal is not None and version in refusal and SUPPORTED["responses"].text in refusal


@pytest.mark.parametrize("version", ["0.2.12", "0.2.24", "0.3.0", "0.3.5"])
def test_agents_accepts_0_2_and_0_3(version: str) -> None:
    assert version_refusal("agents", Version.parse(version)) is None


@pytest.mark.parametrize("version", ["0.1.9", "0.4.7", "0.7.3", "1.5.0"])
def test_agents_refuses_outside_0_2_to_0_3_naming_the_version(version: str) -> None:
    refusal = version_refusal("agents", Version.parse(version))
    assert refusal is not None and version in refusal
    if version != "0.1.9":
        assert "use provider: responses" in refusal


def test_a_release_candidate_suffix_is_judged_by_its_number() -> None:
    assert version_refusal("responses", Version.parse("0.7.3rc1")) is None
    assert version_refusal("agents", Version.parse("0.4.0rc2")) is not None
