"""Merging the note block into an activity description without touching the runner's text."""

from __future__ import annotations

from strava_massage.config import PRODUCT_NAME

# The markers are whole lines. The runner's text is everything outside the one block we wrote;
# look-alike lines that are not exactly these are left alone.
BLOCK_START = f"— {PRODUCT_NAME} note —"
BLOCK_END = f"— end of {PRODUCT_NAME} note —"
SEPARATOR = "\n\n"


def make_block(note_text: str) -> str:
    """Wrap a rendered note in the block markers."""
    return f"{BLOCK_START}\n{note_text.strip()}\n{BLOCK_END}"


def find_block(description: str, previous_block: str | None = None) -> tuple[int, int] | None:
    """Locate our block as (start, end) offsets, separator included, or None.

    The exact block written last time is looked for first, so a runner's text that happens to
    contain marker-like lines cannot be mistaken for ours; failing that, the last well-formed
    marker pair (our block after the runner edited inside it) is taken.
    """
    if previous_block:
        at = description.rfind(previous_block)
        if at != -1:
            return _with_separator(description, at, at + len(previous_block))
    end_at = description.rfind("\n" + BLOCK_END)
    while end_at != -1:
        end = end_at + 1 + len(BLOCK_END)
        start = description.rfind(BLOCK_START, 0, end_at + 1)
        if (
            start != -1
            and _is_line(description, start, start + len(BLOCK_START))
            and _is_line(description, end_at + 1, end)
        ):
            return _with_separator(description, start, end)
        end_at = description.rfind("\n" + BLOCK_END, 0, end_at)
    return None


def _is_line(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] stands alone on its line."""
    return (start == 0 or text[start - 1] == "\n") and (end == len(text) or text[end] == "\n")


def _with_separator(text: str, start: int, end: int) -> tuple[int, int]:
    """Extend the span over the separator we put before the block, when it is there."""
    if start >= len(SEPARATOR) and text[start - len(SEPARATOR) : start] == SEPARATOR:
        return start - len(SEPARATOR), end
    return start, end


def merge_note(description: str, note_text: str, previous_block: str | None = None) -> str:
    """Put the note block into the description: replace ours if present, else append it."""
    block = make_block(note_text)
    span = find_block(description, previous_block)
    if span is None:
        return description + SEPARATOR + block if description else block
    start, end = span
    prefix = SEPARATOR if start > 0 else ""
    return description[:start] + prefix + block + description[end:]


def runner_text(description: str, previous_block: str | None = None) -> str:
    """The description with our block (and its separator) taken out."""
    span = find_block(description, previous_block)
    if span is None:
        return description
    start, end = span
    return description[:start] + description[end:]
