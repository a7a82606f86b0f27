"""Summarise the six histories' replays: `python -m tests.advice.report`.

For each history: the notes by rule, the session suggestions, the longest run of one wording
(tip, rule wording or body, as test_properties reads it), the distinct tips shown and how long
the replay took. The table is Markdown, ready for a closing note.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from strava_massage.advice import KINDS

from .histories import HISTORIES, Replayed, longest_same_wording, replay_history


def table(replays: Sequence[Replayed]) -> Iterator[str]:
    """The summary as Markdown lines, one row per history and a total replay time."""
    seen = {n.kind for r in replays for n in r.notes}
    kinds = [k for k in KINDS if k in seen] + sorted(seen - set(KINDS))
    header = [
        "history", "runs", *kinds, "sessions", "longest same wording", "distinct tips", "replay s",
    ]  # fmt: skip
    yield "| " + " | ".join(header) + " |"
    yield "|" + "|".join("---" if i == 0 else "--:" for i in range(len(header))) + "|"
    for r in replays:
        counts = Counter(n.kind for n in r.notes)
        longest, _ = longest_same_wording(r.notes)
        row = [
            r.history.name,
            str(len(r.notes)),
            *(str(counts[k]) for k in kinds),
            str(sum(n.is_session for n in r.notes)),
            str(longest),
            str(len({n.tip_id for n in r.notes if n.tip_id})),
            f"{r.seconds:.2f}",
        ]
        yield "| " + " | ".join(row) + " |"
    yield ""
    yield f"replays: {sum(r.seconds for r in replays):.1f} s for {len(replays)} histories"


def main() -> None:
    """Replay every history and print the table."""
    for line in table([replay_history(h) for h in HISTORIES]):
        print(line)


if __name__ == "__main__":
    main()
