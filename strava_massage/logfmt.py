"""Log lines a machine can parse: an event's life as key=value pairs."""

from __future__ import annotations


def life_line(stage: str, event_id: int, athlete_id: int, **fields: object) -> str:
    """`event <stage> event=.. athlete=.. key=value ...`, values quoted when they need it."""
    pairs = [f"event={event_id}", f"athlete={athlete_id}"]
    for key, value in fields.items():
        text = str(value)
        # Quote values with spaces, quotes or newlines, so a parser splits the line right.
        if not text or any(c in text for c in ' "=\\\n'):
            escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            text = f'"{escaped}"'
        pairs.append(f"{key}={text}")
    return f"event {stage} " + " ".join(pairs)
