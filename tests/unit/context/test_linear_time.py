"""Every pattern run over cluster text is linear-time: RE2 by construction, and measured as a ratio.

One crafted log line must never stall the replica (docs/security.md, "Linear-time text handling"):
the context engine compiles its patterns with RE2 only, which this file checks statically, and the
cost of every pattern on adversarial 256 KB inputs grows linearly (4n costs < 8x n, where quadratic is
16x), which a backtracking engine fails by orders of magnitude on the same inputs.
"""

from __future__ import annotations

import ast
import gc
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant_backend import linear
from assistant_backend.context import budget, findings, redact
from assistant_backend.providers import base as provider_base

CONTEXT_DIR = Path(redact.__file__).parent


def _modules() -> list[Path]:
    return [*sorted(CONTEXT_DIR.glob("*.py")), Path(provider_base.__file__)]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_no_backtracking_regex_module_is_used_on_cluster_text(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(alias.name != "re" for alias in node.names), f"{path.name} imports re"
        if isinstance(node, ast.ImportFrom):
            assert node.module != "re", f"{path.name} imports from re"


def _all_patterns() -> list[tuple[str, linear.Regex]]:
    found: list[tuple[str, linear.Regex]] = [(f"redact.{p.name}", p.regex) for p in redact.PATTERNS]
    for module in (redact, findings, budget, provider_base):
        for name, value in vars(module).items():
            if not isinstance(value, type) and hasattr(value, "pattern") and hasattr(value, "sub"):
                found.append((f"{module.__name__.rsplit('.', 1)[-1]}.{name}", value))
    return found


PATTERNS = _all_patterns()
# Run only over key names, cut to 256 characters first (redact._words): not over cluster text.
NAME_ONLY = {"redact._WORD_SPLIT"}
TEXT_PATTERNS = [(n, r) for n, r in PATTERNS if n not in NAME_ONLY]


def test_every_pattern_is_compiled_by_re2() -> None:
    assert len(PATTERNS) > len(redact.PATTERNS)
    for name, regex in PATTERNS:
        assert linear.is_linear(regex), f"{name} is not an RE2 pattern"


# Inputs that make backtracking engines quadratic or worse on the shapes our patterns have: runs of
# key characters with no separator, prefixes that open a token and never close it, unclosed quotes,
# many starts of a key block, many '@' after a scheme. Each is repeated up to the size.
ADVERSARIAL: dict[str, str] = {
    "underscored_run": "a_",
    "dotted_run": "a.",
    "jwt_prefix": "eyJaaaaaaaa-",
    "secret_words": "password_",
    "unclosed_quote_after_key": 'secret "',
    "scheme_user": "a://b:",
    "at_signs": "x@",
    "flags": " --password",
    "pem_begin": "-----BEGIN PRIVATE KEY-----",
    "base64_run": "Ab1/",
    "couldnt_find_key": "couldn't find key ",
    "configmap_quote": 'configmaps "',
    "bearer": "Bearer ",
    "mysql": "mysql -p",
}
SIZE = 256 * 1024


def _cost(run: Callable[[], object], repeats: int = 5) -> float:
    """The best of a few runs, without the collector: the least noisy estimate on a busy machine."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize(("name", "regex"), TEXT_PATTERNS, ids=[n for n, _ in TEXT_PATTERNS])
def test_cost_grows_linearly_on_adversarial_256kb_lines(name: str, regex: linear.Regex) -> None:
    # 64 KB against 256 KB: linear costs 4x, quadratic 16x. The bound (8x) leaves room for a busy
    # machine's noise on one side and still fails any super-linear pattern by a wide margin.
    worst = 0.0
    for unit in ADVERSARIAL.values():
        small_text = (unit * (SIZE // 4 // len(unit) + 1))[: SIZE // 4]
        large_text = (unit * (SIZE // len(unit) + 1))[:SIZE]
        small, large = float("inf"), float("inf")
        for _ in range(5):  # interleaved, so a slow moment hits both sizes alike
            small = min(small, _cost(lambda text=small_text: regex.sub("", text), repeats=1))
            large = min(large, _cost(lambda text=large_text: regex.sub("", text), repeats=1))
        # Below 5 ms a busy machine's hiccups dominate; a quadratic pattern takes seconds here.
        worst = max(worst, large / max(small, 5e-3))
    assert worst < 8.0, f"{name}: 4n costs {worst:.1f}x n"


def test_the_whole_redaction_of_hostile_text_grows_linearly() -> None:
    # The whole pipeline (cut lines, every pattern, callbacks) on the worst shapes, one line each.
    text = "\n".join((unit * (SIZE // len(unit)))[: SIZE // 4] for unit in ADVERSARIAL.values())
    four = "\n".join([text] * 4)
    small, large = float("inf"), float("inf")
    for _ in range(3):
        small = min(small, _cost(lambda: redact.redact_text(text), repeats=1))
        large = min(large, _cost(lambda: redact.redact_text(four), repeats=1))
    assert large / max(small, 5e-3) < 8.0
