"""The scheduler's explanations: one short line per non-obvious decision.

Each step of the pipeline returns notes with the resources they are about;
the transition keeps the notes whose resources have an action in it (so a
failover's reason names what caused it) and the ones marked `always`
(maintenance, no node online, unmanaged resources).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    text: str
    subjects: tuple[str, ...] = ()  # resource ids the note is about
    always: bool = False


def select(notes: Iterable[Note], acted_on: frozenset[str]) -> tuple[str, ...]:
    """Texts of the notes relevant to a transition touching `acted_on`, in
    pipeline order, without duplicates."""
    seen: set[str] = set()
    out: list[str] = []
    for note in notes:
        if note.text in seen:
            continue
        if note.always or acted_on.intersection(note.subjects):
            seen.add(note.text)
            out.append(note.text)
    return tuple(out)
