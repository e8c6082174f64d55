"""Fit sections into the token budget by priority, marking every cut in the text itself.

Sections arrive in priority order (findings, Application, revision, diff, status, related, events,
logs, spec).
Each kind has a soft share of the budget so one huge log cannot starve the events; what a section
does not use is left for the next, and a second pass gives leftover room back to sections that were
cut. Sections that do not fit at all are named in a closing note, so the model knows they exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .. import linear
from .base import Source
from .tokens import CHARS_PER_TOKEN, estimate_tokens

Keep = Literal["head", "tail", "errors"]

# Share of the budget one section of a kind may take in the first pass.
SHARE: dict[str, float] = {
    "findings": 0.5,
    "application": 0.25,
    "revision": 0.05,
    "diff": 0.25,
    "status": 0.2,
    "related": 0.12,
    "events": 0.2,
    "logs": 0.2,
    "spec": 0.15,
    "note": 0.05,
}
MIN_SECTION_TOKENS = 40  # below this a cut section says nothing useful

_ERROR = linear.compile(
    r"(?i)\b(error|err|fatal|panic|exception|traceback|failed|failure|refused|denied|cannot|unable|"
    r"timeout|timed out|killed|oom|not found|invalid|unauthorized|forbidden|warning)\b"
)


@dataclass(frozen=True, slots=True)
class Section:
    kind: str
    ref: str
    title: str
    body: str
    redactions: int = 0
    keep: Keep = "head"
    truncated: bool = False
    source: Source = "kubernetes"

    @property
    def text(self) -> str:
        return f"## {self.title}\n{self.body}\n"

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.text)


def _marker(omitted: int, total: int) -> str:
    return f"[... {omitted} of {total} lines omitted to fit the token budget ...]"


def truncate_lines(lines: Sequence[str], max_tokens: int, keep: Keep) -> list[str]:
    """Choose lines that fit ``max_tokens``; gaps are marked. ``errors`` keeps error-looking lines first,
    then the most recent ones (logs), ``tail`` the last lines, ``head`` the first."""
    total = len(lines)
    if keep == "head":
        order = list(range(total))
    elif keep == "tail":
        order = list(range(total - 1, -1, -1))
    else:
        recent = list(range(total - 1, -1, -1))
        errors = [i for i in recent if _ERROR.search(lines[i])]
        # the last few lines first (how it ended), then errors newest first, then the rest
        last = recent[:5]
        order = (
            last
            + [i for i in errors if i not in last]
            + [i for i in recent if i not in last and i not in errors]
        )
    picked: list[int] = []
    used = 0
    for i in order:
        cost = estimate_tokens(lines[i] + "\n")
        if used + cost > max_tokens:
            if keep != "errors":
                break
            continue
        picked.append(i)
        used += cost
    out = _with_markers(lines, set(picked))
    # Gap markers cost tokens too: give back the least important lines until it all fits.
    while picked and estimate_tokens("\n".join(out)) > max_tokens:
        picked.pop()
        out = _with_markers(lines, set(picked))
    return out


def _with_markers(lines: Sequence[str], chosen: set[int]) -> list[str]:
    total = len(lines)
    out: list[str] = []
    gap = 0
    for i in range(total):
        if i in chosen:
            if gap:
                out.append(_marker(gap, total))
                gap = 0
            out.append(lines[i])
        else:
            gap += 1
    if gap:
        out.append(_marker(gap, total))
    return out


def cut(section: Section, max_tokens: int) -> Section:
    """The section shortened to at most ``max_tokens`` (title kept), marked as truncated."""
    if section.tokens <= max_tokens:
        return section
    head = estimate_tokens(f"## {section.title}\n\n")
    lines = section.body.splitlines()
    body_lines = truncate_lines(lines, max(max_tokens - head, 0), section.keep)
    body = "\n".join(body_lines)
    if estimate_tokens(f"## {section.title}\n{body}\n") > max_tokens:
        # a few very long lines (huge messages): cut by characters, marked
        marker = "[... cut to fit the token budget ...]"
        room = max(max_tokens - head - estimate_tokens(marker) - 1, 0) * CHARS_PER_TOKEN
        body = body[:room] + "\n" + marker
    return replace(section, body=body, truncated=True)


@dataclass(frozen=True, slots=True)
class Fitted:
    sections: tuple[Section, ...]
    omitted: tuple[Section, ...]


def fit(sections: Sequence[Section], budget: int, reserved: int = 0) -> Fitted:
    """Fill ``budget`` (minus ``reserved`` for the header and notes) in priority order."""
    available = max(budget - reserved, 0)
    sizes = [0] * len(sections)
    remaining = available
    # pass 1: each section up to its kind's share
    for i, section in enumerate(sections):
        cap = int(budget * SHARE.get(section.kind, 0.15))
        allowance = min(section.tokens, cap, remaining)
        if allowance < section.tokens and allowance < MIN_SECTION_TOKENS:
            allowance = 0
        sizes[i] = allowance
        remaining -= allowance
    # pass 2: leftover room back to cut or dropped sections, in priority order
    for i, section in enumerate(sections):
        if remaining <= 0:
            break
        if sizes[i] < section.tokens:
            extra = min(section.tokens - sizes[i], remaining)
            if sizes[i] + extra >= MIN_SECTION_TOKENS:
                remaining -= extra
                sizes[i] += extra
    kept: list[Section] = []
    omitted: list[Section] = []
    for section, size in zip(sections, sizes, strict=True):
        if size <= 0:
            omitted.append(section)
        else:
            kept.append(cut(section, size))
    return Fitted(tuple(kept), tuple(omitted))
