"""The adversarial corpus (tests/data/redaction/corpus.yaml): 0 leaks, near-misses stay readable.

Objects go through the same path as the context (Redactor.obj, then YAML as render.py prints it); text
through redact_text. A case fails if any planted secret survives anywhere in the output, or if the
evidence it names (or a harmless near-miss value) was masked away.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant_backend.context.redact import Redactor, redact_text

CORPUS = Path(__file__).parents[2] / "data" / "redaction" / "corpus.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text())


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def redacted(case: dict[str, Any]) -> tuple[str, int]:
    if case["kind"] == "text":
        return redact_text(str(case["input"]))
    red = Redactor()
    clean = red.obj(case["input"])
    shown = "\n".join([yaml.safe_dump(clean, allow_unicode=True, width=10_000), json.dumps(clean), *_strings(clean)])
    return shown, red.count


# Public values the redactor masks on purpose: by shape they cannot be told from credentials, and a
# false positive costs a little evidence where a miss costs a credential. Asserted, so a change in
# behaviour is noticed either way.
ACCEPTED_FALSE_POSITIVES = {
    "nm-helm-existing-secret": "adminPasswordKey names a key of a Secret, but PASSWORD...KEY is how real keys are named too",
    "nm-sealed-secret-ciphertext": "SealedSecret ciphertext is public, but it sits under key names like `password`",
    "nm-jwks-public-modulus": "a JWKS modulus is public base64url, indistinguishable from a token by shape",
}


def test_the_corpus_is_large_and_well_formed() -> None:
    assert len(CASES) >= 200
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert sum(1 for c in CASES if not c["secrets"]) >= 60  # near-misses
    for case in CASES:
        text = json.dumps(case["input"]) if case["kind"] == "object" else str(case["input"])
        for secret in case["secrets"]:
            assert secret in text or json.dumps(secret)[1:-1] in text, case["id"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    output, count = redacted(case)
    if case["id"] in ACCEPTED_FALSE_POSITIVES:
        assert not case["secrets"] and any(k not in output for k in case["keep"]) and count >= 1
        return
    leaked = [s for s in case["secrets"] if s in output]
    assert not leaked, f"{case['id']} ({case['source']}): leaked {leaked}\n{output[:2000]}"
    lost = [k for k in case["keep"] if k not in output]
    assert not lost, f"{case['id']} ({case['source']}): masked evidence {lost}\n{output[:2000]}"
    if case["secrets"]:
        assert count >= 1, "every redaction is counted"
