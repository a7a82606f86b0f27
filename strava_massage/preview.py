"""Replay a runner's Strava bulk export through the advice rules, writing nothing anywhere.

The replay uses the same ledger and the same `decide_note` as the worker, on a throwaway
in-memory SQLite database, so what it prints is what the service would have written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate
from pathlib import Path
from zoneinfo import ZoneInfo

from strava_massage import ledger
from strava_massage.advice import DEFAULTS, AdviceSettings, Units, format_distance
from strava_massage.db import Database
from strava_massage.models import Athlete, Base, MassageSession
from strava_massage.processing import decide_note
from strava_massage.strava import ActivityInfo

PREVIEW_ATHLETE = 1
WORKOUT_RACE = 1
# The export writes dates in English, in UTC, e.g. "Mar 3, 2024, 6:45:12 AM".
EXPORT_DATE_FORMATS = ("%b %d, %Y, %I:%M:%S %p", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ")
KIND_LABELS = {
    "post_race": "post-race",
    "pre_race": "pre-race",
    "load_spike": "load spike",
    "long_run": "long run",
    "high_volume": "high volume",
    "monthly_checkin": "check-in",
    "recovery_tip": "tip",
}


class ExportError(ValueError):
    """The file is not a readable Strava export; the message says what is wrong."""


@dataclass(frozen=True)
class Export:
    """The activities read from an export, and what was left out of them."""

    runs: list[ActivityInfo]
    other_activities: int = 0
    unreadable_rows: list[int] = field(default_factory=list)  # CSV line numbers


@dataclass(frozen=True)
class PreviewNote:
    """One run of the replay and the note it would have got."""

    local_date: dt.date
    distance_m: float
    kind: str
    reason: str
    text: str
    tip_id: str | None
    is_session: bool


@dataclass(frozen=True)
class Week:
    """A Monday-to-Sunday week of the replay."""

    start: dt.date
    total_m: float
    rolling28_m: float
    notes: list[PreviewNote]


def read_export(path: Path, tz: dt.tzinfo = dt.UTC) -> Export:
    """Read `activities.csv`, or the whole export zip holding it; runs only, oldest first."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "activities.csv"]
            if not names:
                raise ExportError(f"{path.name} holds no activities.csv; is it a Strava export?")
            text = archive.read(min(names, key=len)).decode("utf-8-sig")
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise ExportError(f"{path.name} is neither a CSV file nor a zip archive") from None
    return parse_activities(text, tz)


def _column(header: Sequence[str], name: str, *, last: bool = False) -> int | None:
    """Index of a column; the export repeats some names, and `last` picks the second one."""
    found = [i for i, h in enumerate(header) if h.strip() == name]
    if not found:
        return None
    return found[-1] if last else found[0]


def parse_activities(text: str, tz: dt.tzinfo = dt.UTC) -> Export:
    """Parse the export's CSV text into runs, with local start times in `tz`."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        raise ExportError("the file is empty")
    where = {
        "id": _column(header, "Activity ID"),
        "date": _column(header, "Activity Date"),
        "type": _column(header, "Activity Type"),
        # "Distance" appears twice: first in the runner's display units, then in metres.
        "distance": _column(header, "Distance", last=True),
        "moving": _column(header, "Moving Time"),
        "elapsed": _column(header, "Elapsed Time", last=True),
        "workout": _column(header, "Workout Type"),
    }
    missing = [name for name in ("date", "type", "distance") if where[name] is None]
    if missing:
        raise ExportError(
            "this does not look like Strava's activities.csv: no "
            + ", ".join(repr(n.title()) for n in missing)
            + " column"
        )
    metres = len([h for h in header if h.strip() == "Distance"]) > 1
    runs: list[ActivityInfo] = []
    others, bad = 0, []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cell = _Row(row, where)
        if cell.get("type") not in DEFAULTS.sport_types:
            others += 1
            continue
        try:
            start = _parse_date(cell.get("date")).astimezone(tz).replace(tzinfo=None)
            distance = _number(cell.get("distance")) * (1 if metres else 1000)
            seconds = _number(cell.get("moving") or cell.get("elapsed") or "0")
        except ValueError:
            bad.append(line)
            continue
        workout = cell.get("workout")
        runs.append(
            ActivityInfo(
                id=int(_number(cell.get("id"))) if cell.get("id") else line,
                athlete_id=PREVIEW_ATHLETE,
                sport_type=cell.get("type"),
                distance_m=distance,
                moving_time_s=int(seconds),
                start_date_local=start,
                timezone=None,
                workout_type=int(_number(workout)) if workout else None,
                description="",
                private_note=None,
            )
        )
    runs.sort(key=lambda r: (r.start_date_local, r.id))
    return Export(runs=runs, other_activities=others, unreadable_rows=bad)


class _Row:
    """One CSV row, read by column role."""

    def __init__(self, row: list[str], where: dict[str, int | None]) -> None:
        self._row, self._where = row, where

    def get(self, name: str) -> str:
        """The stripped cell for a role, or "" when the column or cell is missing."""
        i = self._where[name]
        return self._row[i].strip() if i is not None and i < len(self._row) else ""


def _parse_date(text: str) -> dt.datetime:
    """An export timestamp (UTC) as an aware datetime."""
    for fmt in EXPORT_DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise ValueError(f"unreadable date {text!r}")


def _number(text: str) -> float:
    """A number as the export writes it (thousands separators allowed)."""
    value = float(text.replace(",", ""))
    if value < 0 or value != value:  # negative or NaN
        raise ValueError(text)
    return value


def replay(
    runs: Iterable[ActivityInfo],
    *,
    units: str = "km",
    massages: Iterable[dt.date] = (),
    races: Iterable[dt.date] = (),
    settings: AdviceSettings = DEFAULTS,
) -> list[PreviewNote]:
    """The note every run would have got, in order, as if the runner had connected before it.

    Runs on a race date are taken as the race (the longest of the day); until each race, it is
    the runner's "next race", as if they had entered it in their settings.
    """
    runs = sorted(runs, key=lambda r: (r.start_date_local, r.id))
    if not runs:
        return []
    race_days = sorted(set(races))
    race_ids = {
        max((r for r in runs if r.start_date_local.date() == day), key=lambda r: r.distance_m).id
        for day in race_days
        if any(r.start_date_local.date() == day for r in runs)
    }
    db = Database("sqlite://")  # in memory: nothing touches the service's database
    Base.metadata.create_all(db.engine)
    first = runs[0].start_date_local.date()
    out: list[PreviewNote] = []
    with db.session() as session:
        athlete = Athlete(
            id=PREVIEW_ATHLETE,
            units=units,
            notes_enabled=True,
            connected_at=dt.datetime.combine(first, dt.time(), dt.UTC),
            advice_overrides={},
        )
        session.add(athlete)
        session.add_all(MassageSession(athlete_id=PREVIEW_ATHLETE, on=day) for day in massages)
        for run in runs:
            day = run.start_date_local.date()
            athlete.next_race_on = next((d for d in race_days if d >= day), None)
            if run.id in race_ids:
                run = replace(run, workout_type=WORKOUT_RACE)
            ledger.upsert_run(session, run)
            note = decide_note(session, athlete, run.id, settings)
            session.add(note)
            session.flush()
            out.append(
                PreviewNote(
                    local_date=day,
                    distance_m=run.distance_m,
                    kind=note.kind,
                    reason=note.reason,
                    text=note.text,
                    tip_id=note.tip_id,
                    is_session=note.is_session,
                )
            )
    db.dispose()
    return out


def weeks(notes: Sequence[PreviewNote]) -> list[Week]:
    """Group the replay by Monday-to-Sunday week, with each week's total and 28-day volume."""
    by_week: dict[dt.date, list[PreviewNote]] = {}
    for note in notes:
        by_week.setdefault(ledger.week_start(note.local_date), []).append(note)
    dates = [n.local_date for n in notes]  # replay order is date order
    running = list(accumulate((n.distance_m for n in notes), initial=0.0))
    out = []
    for start, items in sorted(by_week.items()):
        end = start + dt.timedelta(days=6)
        lo, hi = bisect_left(dates, end - dt.timedelta(days=27)), bisect_right(dates, end)
        out.append(Week(start, sum(n.distance_m for n in items), running[hi] - running[lo], items))
    return out


def format_preview(
    export: Export, notes: Sequence[PreviewNote], units: str = "km", full: bool = False
) -> Iterator[str]:
    """The printed report: a line per week, a line per note, and a summary of the rules."""
    u: Units = "mi" if units == "mi" else "km"
    if not notes:
        yield "No runs found in the export, so there is nothing to preview."
        return
    yield (
        f"{len(notes)} runs from {notes[0].local_date} to {notes[-1].local_date} "
        f"({export.other_activities} other activities left out)"
    )
    if export.unreadable_rows:
        shown = ", ".join(map(str, export.unreadable_rows[:10]))
        yield f"warning: {len(export.unreadable_rows)} unreadable row(s) skipped (lines {shown})"
    for week in weeks(notes):
        yield ""
        yield (
            f"week of {week.start}  {len(week.notes)} run(s)  {format_distance(week.total_m, u)}"
            f"  (28 days: {format_distance(week.rolling28_m, u)})"
        )
        for note in week.notes:
            label = KIND_LABELS.get(note.kind, note.kind)
            yield (
                f"  {note.local_date:%a %d %b}  {format_distance(note.distance_m, u):>9}"
                f"  {label:<12} {note.reason}"
            )
            if full:
                yield from ("      " + line for line in note.text.splitlines())
    counts = Counter(n.kind for n in notes)
    yield ""
    yield "notes by rule: " + ", ".join(
        f"{KIND_LABELS[k]} {counts[k]}" for k in KIND_LABELS if counts[k]
    )
    sessions = sum(n.is_session for n in notes)
    yield f"session suggestions: {sessions} of {len(notes)} notes"


def zone(name: str) -> dt.tzinfo:
    """A time zone by IANA name, for the export's UTC start times."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise ExportError(f"unknown time zone {name!r} (use a name like Europe/London)") from None


__all__ = ["Export", "ExportError", "PreviewNote", "format_preview", "read_export", "replay"]
