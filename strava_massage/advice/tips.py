"""Recovery tips: what each is, the contexts it fits, and the picker that never repeats one."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

# The contexts a run can be in, most specific first: a tip for the first one that applies wins.
RACE_WEEK = "race_week"  # a race the runner set is 0-7 days away
AFTER_RACE = "after_race"  # a race in the last few days
COMEBACK = "comeback"  # back from a layoff, still below the old volume
AFTER_LONG_RUN = "after_long_run"  # this run is a long one
AFTER_WORKOUT = "after_workout"  # this run is a workout (intervals, tempo, hills)
HIGH_VOLUME = "high_volume"  # the last 7 days are past the high-volume mark
BEGINNER = "beginner"  # under 30 km a week on average
EASY_DAY = "easy_day"  # none of the above
CONTEXTS: tuple[str, ...] = (
    RACE_WEEK,
    AFTER_RACE,
    COMEBACK,
    AFTER_LONG_RUN,
    AFTER_WORKOUT,
    HIGH_VOLUME,
    BEGINNER,
    EASY_DAY,
)


@dataclass(frozen=True)
class Tip:
    """One recovery tip, with the facts it rests on and the contexts it suits."""

    id: str
    text: str  # the note's body: one or two plain sentences
    why: str  # why it fits, finishing the note's "Why:" line after the run's context
    fact_ids: tuple[str, ...]  # ids from recovery-knowledge.md
    contexts: frozenset[str]  # from CONTEXTS
    areas: frozenset[str] = frozenset()  # niggle areas it looks after (state.NIGGLE_AREAS)


def tip(tip_id: str, text: str, *, why: str, facts: str, contexts: str, areas: str = "") -> Tip:
    """A Tip from space-separated fact ids, contexts and areas (keeps the library readable)."""
    return Tip(
        tip_id,
        text,
        why,
        tuple(facts.split()),
        frozenset(contexts.split()),
        frozenset(areas.split()),
    )


def stable_index(key: int, size: int) -> int:
    """Map a key (an activity id) to an index in [0, size) that is the same in every process."""
    # hash() of an int is stable too, but consecutive ids would walk a list in order; a digest
    # spreads neighbouring runs across it.
    digest = hashlib.sha256(str(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") % size


def pick_tip(
    library: Sequence[Tip],
    key: int,
    contexts: Sequence[str],
    recent: frozenset[str],
    area: str | None = None,
) -> Tip:
    """A tip not in `recent` that fits the first context it can (and the niggle's area, if any).

    `contexts` are the run's, most specific first. The choice among equals is stable per key.
    """
    fresh = [t for t in library if t.id not in recent] or list(library)
    tiers: list[list[Tip]] = []
    if area is not None:
        tiers.append([t for t in fresh if area in t.areas and t.contexts & set(contexts)])
    tiers += [[t for t in fresh if context in t.contexts] for context in contexts]
    tiers.append(fresh)
    chosen = next(tier for tier in tiers if tier)
    # Sorted by id so editing the library's order never changes which tip a run gets.
    chosen.sort(key=lambda t: t.id)
    return chosen[stable_index(key, len(chosen))]
