"""Fit sections into the token budget by priority, marking every cut in the text itself.

Sections arrive in priority order (findings, Application, revision, diff, status, related, events,
logs, spec).
Each kind has a soft share of the budget so one huge log cannot starve the events; what a section
does not use is left for the next, and a second pass gives leftover room back to sections that were
cut. Sections that do not fit at all are named in a closing note, so the model knows they exist.

The question steers the budget: words about logs, sync/diff, scheduling, network, storage,
permissions or slowness raise the share of the matching section kinds and let them take leftover
room first (:func:`steer`). The ``context`` event still lists exactly what was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .. import linear
from ..linear import Regex
from .base import Source
from .objects import ERROR_LINE
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
    "relations": 0.15,
    "note": 0.05,
}
BOOST = 2.0  # a kind the question asks about may take this many times its share

# Question words -> the section kinds that answer them (matched case-insensitively, whole words).
_STEERING: tuple[tuple[Regex, tuple[str, ...]], ...] = tuple(
    (linear.compile(rf"(?i)\b({words})"), kinds)
    for words, kinds in (
        (r"logs?\b|print|output|stack ?trace|exception|behaviou?r|behaving", ("logs",)),
        (r"out ?of ?sync|outofsync|diff|drift|sync|prune|manifest|spec\b|config", ("application", "spec")),
        (r"schedul|pending|node|taint|affinity|arch", ("events", "relations", "status")),
        (r"network|ingress|service|endpoint|port|502|503|dns|connect", ("relations", "related")),
        (r"storage|volume|pvc|disk|mount|attach", ("relations", "events")),
        (r"permission|forbidden|rbac|denied|403|unauthori[sz]ed|access", ("logs", "relations")),
        (r"slow|latency|timeout|hang|stuck|takes long", ("logs", "events")),
    )
)


def steer(question: str) -> frozenset[str]:
    """The section kinds the question asks about."""
    return frozenset(kind for pattern, kinds in _STEERING if pattern.search(question or "") for kind in kinds)


MIN_SECTION_TOKENS = 40  # below this a cut section says nothing useful


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
        errors = [i for i in recent if ERROR_LINE.search(lines[i])]
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


def fit(sections: Sequence[Section], budget: int, reserved: int = 0, question: str = "") -> Fitted:
    """Fill ``budget`` (minus ``reserved`` for the header and notes) in priority order; the kinds the
    question asks about get a larger share and the leftover first."""
    available = max(budget - reserved, 0)
    sizes = [0] * len(sections)
    remaining = available
    asked = steer(question)
    # pass 1: each section up to its kind's share
    for i, section in enumerate(sections):
        share = SHARE.get(section.kind, 0.15) * (BOOST if section.kind in asked else 1.0)
        cap = int(budget * share)
        allowance = min(section.tokens, cap, remaining)
        if allowance < section.tokens and allowance < MIN_SECTION_TOKENS:
            allowance = 0
        sizes[i] = allowance
        remaining -= allowance
    # pass 2: leftover room back to cut or dropped sections, asked-about kinds first, else in order
    order = sorted(range(len(sections)), key=lambda i: (sections[i].kind not in asked, i))
    for i in order:
        section = sections[i]
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
