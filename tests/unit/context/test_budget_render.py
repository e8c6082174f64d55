"""Budget filling by priority, marked truncation, error lines kept in logs, items that add up."""

from __future__ import annotations

from assistant_backend.context.budget import Section, fit, truncate_lines
from assistant_backend.context.findings import Finding
from assistant_backend.context.objects import LogTail, Snapshot
from assistant_backend.context.render import assemble, build_sections
from assistant_backend.context.tokens import estimate_tokens


def section(kind: str, lines: int, keep: str = "head") -> Section:
    body = "\n".join(f"{kind} line {i} " + "x" * 30 for i in range(lines))
    return Section(kind, f"ref-{kind}", kind.title(), body, 0, keep)  # type: ignore[arg-type]


def test_everything_fits_untouched_when_small() -> None:
    parts = [section("findings", 3), section("application", 5), section("events", 5)]
    fitted = fit(parts, 4000)
    assert [s.truncated for s in fitted.sections] == [False, False, False] and not fitted.omitted


def test_budget_is_respected_and_cuts_are_marked() -> None:
    parts = [
        section("findings", 20),
        section("application", 40),
        section("status", 200),
        section("events", 200),
        section("logs", 400, "errors"),
        section("spec", 300),
    ]
    budget = 1500
    fitted = fit(parts, budget)
    total = sum(s.tokens for s in fitted.sections)
    assert total <= budget
    assert fitted.sections[0].kind == "findings" and not fitted.sections[0].truncated
    cut = [s for s in fitted.sections if s.truncated]
    assert cut and all("omitted to fit the token budget" in s.body or "cut to fit" in s.body for s in cut)


def test_lower_priority_sections_are_dropped_first() -> None:
    parts = [section("findings", 10), section("spec", 400)]
    fitted = fit(parts, 500, reserved=100)
    assert fitted.sections[0].kind == "findings" and not fitted.sections[0].truncated
    assert sum(s.tokens for s in fitted.sections) <= 400
    assert all(s.truncated for s in fitted.sections[1:]) or [s.kind for s in fitted.omitted] == ["spec"]


def test_error_lines_survive_log_truncation() -> None:
    lines = [f"info line {i}" for i in range(300)]
    lines[42] = "ERROR database connection refused"
    lines[150] = "panic: nil map"
    kept = truncate_lines(lines, 120, "errors")
    text = "\n".join(kept)
    assert "ERROR database connection refused" in text and "panic: nil map" in text
    assert "info line 299" in text  # how it ended
    assert "lines omitted to fit the token budget" in text
    assert estimate_tokens(text) <= 120


def test_tail_keeps_the_newest_lines() -> None:
    kept = truncate_lines([f"event {i}" for i in range(100)], 60, "tail")
    assert kept[-1] == "event 99" and kept[0].startswith("[...")


def test_render_and_assemble_items_match_the_text() -> None:
    snap = Snapshot(
        app={
            "metadata": {"name": "a", "namespace": "argocd"},
            "spec": {"project": "p"},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Degraded"}},
        },
        target={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "uid": "u"},
            "spec": {
                "containers": [{"name": "c", "image": "i", "env": [{"name": "TOKEN", "value": "t0psecret"}]}]
            },
            "status": {"phase": "Running"},
        },
        logs=[LogTail("n", "p", "c", True, "token=abc123def\nboom\n")],
        notes=["could not read events: timed out"],
    )
    sections = build_sections(snap, [Finding("crash_loop", "p crashed", ("Pod n/p status",))], "Pod n/p")
    kinds = [s.kind for s in sections]
    assert kinds == ["findings", "application", "status", "logs", "spec"]
    fitted = fit(sections, 4000)
    text, items = assemble("# header", fitted, snap.notes)
    assert "t0psecret" not in text and "abc123def" not in text
    assert [i.kind for i in items][-1] == "note" and "timed out" in text
    logs = next(i for i in items if i.kind == "logs")
    spec = next(i for i in items if i.kind == "spec")
    assert logs.redactions == 1 and spec.redactions == 1
    assert abs(sum(i.tokens for i in items) - estimate_tokens(text)) <= len(items) + 2


def test_omitted_sections_are_named_in_a_note() -> None:
    sections = [section("findings", 10), section("logs", 5000, "errors")]
    fitted = fit(sections, 500, reserved=360)
    assert [s.kind for s in fitted.omitted] == ["logs"]
    text, items = assemble("# h", fitted, [])
    assert "left out to fit the token budget: logs of ref-logs" in text
    assert items[-1].kind == "note"
