"""Regular expressions that run in linear time, for every pattern applied to text from the cluster.

Logs, events, annotations and status messages are written by whoever runs a workload, including the
users of a public web service whose request lines end up in a log. A backtracking regex (Python's
``re``) can take seconds on one crafted 8 KB line, on the event loop, for every user of the replica
(docs/security.md, "Linear-time text handling"). RE2 (``google-re2``) matches in time linear in the
input by construction: it has no backreferences and no look-around, so patterns here are written
without them and decide the rest in a callback.

Everything that scans cluster text or questions (the context engine, the framing of the model's
input) compiles its pattern with :func:`compile`; a test checks that no module of the context
engine imports ``re``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import re2


class Match(Protocol):
    def group(self, index: int | str = 0, /) -> str | None: ...

    def start(self, index: int | str = 0, /) -> int: ...

    def end(self, index: int | str = 0, /) -> int: ...


class Regex(Protocol):
    """The subset of the ``re.Pattern`` API the context engine uses."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str, pos: int = 0, endpos: int = ..., /) -> Match | None: ...

    def sub(self, repl: str | Callable[[Match], str], text: str, count: int = 0) -> str: ...

    def finditer(self, text: str, pos: int = 0, endpos: int = ..., /) -> Any: ...


def _options() -> Any:
    options = re2.Options()
    # Patterns are ASCII-oriented, texts are not: keep UTF-8 and never fall back to a backtracker.
    options.max_mem = 64 << 20
    return options


_OPTIONS = _options()


def compile(pattern: str) -> Regex:
    """Compile with RE2; raises ``re2.error`` for syntax RE2 does not support (look-around...)."""
    return cast(Regex, re2.compile(pattern, options=_OPTIONS))


def is_linear(regex: object) -> bool:
    """True for patterns compiled by :func:`compile` (used by the tests that guard this module)."""
    return type(regex).__module__.startswith("re2")
