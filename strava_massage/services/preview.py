"""Replay a runner's Strava bulk export through the advice rules, writing nothing anywhere.

The replay uses the same ledger and the same `decide_note` as the worker, on a throwaway
in-memory SQLite database, so what it prints is what the service would have written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import lzma
import math
import zipfile
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from strava_massage.advice import (
    DEFAULTS,
    KINDS,
    WORKOUT_LONG_RUN,
    WORKOUT_RACE,
    WORKOUT_WORKOUT,
    AdviceSettings,
    Units,
    format_distance,
)
from strava_massage.db import Database
from strava_massage.domain import ledger
from strava_massage.domain.activity import ActivityInfo
from strava_massage.models import Athlete, Base, MassageSession
from strava_massage.services import runner
from strava_massage.services.advising import decide_note

PREVIEW_ATHLETE = 1
# The export writes dates in English, in UTC, e.g. "Mar 3, 2024, 6:45:12 AM".
EXPORT_DATE_FORMATS = ("%b %d, %Y, %I:%M:%S %p", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ")
# Strava's workout types as numbers (runs 0-3, rides 10-12) and, for runs, as the export's text.
WORKOUT_CODES = frozenset({0, 1, 2, 3, 10, 11, 12})
WORKOUT_LABELS: dict[str, int | None] = {
    "": None,
    "default": None,
    "race": WORKOUT_RACE,
    "long run": WORKOUT_LONG_RUN,
    "workout": WORKOUT_WORKOUT,
}
# What a row can hold and still be a run the rules can reason about; anything past it is a bad
# row, not a crash deeper down (dates the calendar arithmetic overflows, integers SQLite refuses).
FIRST_YEAR, LAST_YEAR = 1900, 2100
MAX_DISTANCE_M = 2_000_000.0  # 2,000 km: no single run is longer
MAX_SECONDS = 100 * 86_400  # 100 days
MAX_ACTIVITY_ID = 2**62
SKIPPED_SHOWN = 10  # skipped rows the text report lists one by one
# How the report names each rule: a short label where one reads better, otherwise the kind with
# spaces; a kind the engine adds later gets the same treatment (see kind_label).
SHORT_LABELS = {
    "post_race": "post-race",
    "pre_race": "pre-race",
    "monthly_checkin": "check-in",
    "recovery_tip": "tip",
}


def kind_label(kind: str) -> str:
    """The report's label for a rule's kind: "long_run" -> "long run", "recovery_tip" -> "tip"."""
    return SHORT_LABELS.get(kind, kind.replace("_", " "))


KIND_LABELS = {kind: kind_label(kind) for kind in KINDS}  # in the engine's priority order


class ExportError(ValueError):
    """The file is not a readable Strava export; the message says what is wrong."""


class BadRow(NamedTuple):
    """A row of the export that was skipped: its CSV line number and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Export:
    """The activities read from an export, and what was left out of them."""

    runs: list[ActivityInfo]
    other_activities: int = 0
    unreadable_rows: list[BadRow] = field(default_factory=list)  # in file order


@dataclass(frozen=True)
class Race:
    """A race the runner ran or will run: its day and, if known, its distance."""

    on: dt.date
    distance_m: float | None = None


@dataclass(frozen=True)
class PreviewNote:
    """One run of the replay and the note it would have got."""

    local_date: dt.date
    distance_m: float
    kind: str
    reason: str
    text: str
    tip_id: str | None
    wording_id: str | None
    is_session: bool

    def as_json(self) -> str:
        """The note as one line of `preview --json` (the keys are a documented contract)."""
        return json.dumps(
            {
                "date": self.local_date.isoformat(),
                "distance_km": round(self.distance_m / 1000, 2),
                "kind": self.kind,
                "suggests_session": self.is_session,
                "note": self.text,
            }
        )


# A file or zip member that cannot be read: damaged, truncated, encrypted (RuntimeError), or
# compressed in a way zipfile lacks (NotImplementedError).
UNREADABLE_FILE = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    RuntimeError,
    NotImplementedError,
)


def read_export(path: Path, tz: dt.tzinfo = dt.UTC) -> Export:
    """Read `activities.csv`, or the whole export zip holding it; runs only, oldest first."""
    try:
        data = _activities_csv(path) if zipfile.is_zipfile(path) else path.read_bytes()
    except UNREADABLE_FILE as e:
        raise ExportError(f"{path.name} cannot be read ({e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExportError(f"{path.name} is neither a CSV file nor a zip archive") from None
    return parse_activities(text, tz)


def _activities_csv(path: Path) -> bytes:
    """The bytes of `activities.csv` in an export zip (the one nearest the top)."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "activities.csv"]
        if not names:
            raise ExportError(f"{path.name} holds no activities.csv; is it a Strava export?")
        return archive.read(min(names, key=len))


def _column(header: Sequence[str], name: str, *, last: bool = False) -> int | None:
    """Index of a column; the export repeats some names, and `last` picks the second one."""
    found = [i for i, h in enumerate(header) if h.strip() == name]
    if not found:
        return None
    return found[-1] if last else found[0]


def parse_activities(text: str, tz: dt.tzinfo = dt.UTC) -> Export:
    """Parse the export's CSV text into runs, with local start times in `tz`.

    A row that cannot be read is left out and listed in `unreadable_rows` with its line number
    (the line it starts on: a quoted description may span several) and the reason.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise ExportError(f"the header line cannot be read as CSV ({e})") from None
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
    read: list[tuple[int, int | None, ActivityInfo]] = []  # (line, activity id given, run)
    others, bad = 0, []
    first_line_of: dict[int, int] = {}  # activity id -> the line that gave it
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            bad.append(BadRow(line, f"not readable as CSV ({e})"))
            continue
        if not any(cell.strip() for cell in row):
            continue
        cell = _Row(row, where)
        if cell.get("type") not in DEFAULTS.sport_types:
            others += 1
            continue
        try:
            activity_id = _activity_id(cell.get("id"))
            run = _run(cell, tz, metres, activity_id or 0)
        except ValueError as e:
            bad.append(BadRow(line, str(e)))
            continue
        if activity_id is not None:
            if activity_id in first_line_of:
                seen = first_line_of[activity_id]
                bad.append(BadRow(line, f"activity ID {activity_id} repeats line {seen}"))
                continue
            first_line_of[activity_id] = line
        read.append((line, activity_id, run))
    # A row without an ID gets one above every given ID, so it cannot take another run's place.
    spare = max(first_line_of, default=0)
    runs = [r if given is not None else _with_id(r, spare + line) for line, given, r in read]
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


def _run(cell: _Row, tz: dt.tzinfo, metres: bool, activity_id: int) -> ActivityInfo:
    """The run a row describes; ValueError with the reason when a cell makes no sense."""
    start = _parse_date(cell.get("date"), tz)
    distance = cell.get("distance")
    try:
        distance_m = _number(distance) * (1 if metres else 1000)
    except ValueError:
        raise ValueError(f"distance {_shown(distance)} is not a distance") from None
    if distance_m > MAX_DISTANCE_M:
        raise ValueError(f"distance {_shown(distance)} is too long for one run")
    duration = cell.get("moving") or cell.get("elapsed") or "0"
    try:
        seconds = _number(duration)
    except ValueError:
        raise ValueError(f"time {_shown(duration)} is not a number of seconds") from None
    if seconds > MAX_SECONDS:
        raise ValueError(f"time {_shown(duration)} is too long for one run")
    return ActivityInfo(
        id=activity_id,
        athlete_id=PREVIEW_ATHLETE,
        sport_type=cell.get("type"),
        distance_m=distance_m,
        moving_time_s=int(seconds),
        start_date_local=start,
        timezone=None,
        workout_type=workout_type(cell.get("workout")),
        description="",
        private_note=None,
    )


def _with_id(run: ActivityInfo, activity_id: int) -> ActivityInfo:
    """The same run under another activity ID."""
    return replace(run, id=activity_id)


def _activity_id(text: str) -> int | None:
    """The row's activity ID (a positive whole number), or None when the cell is blank."""
    if not text:
        return None
    try:
        value = _number(text)
    except ValueError:
        value = -1.0
    if not (value.is_integer() and 0 < value <= MAX_ACTIVITY_ID):
        raise ValueError(f"activity ID {_shown(text)} is not an ID")
    return int(value)


def workout_type(text: str) -> int | None:
    """Strava's workout type from the export: a number ("1", "1.0") or a label ("Long Run").

    "Default" and a blank cell mean none; anything else is a ValueError saying so.
    """
    label = " ".join(text.split()).lower()
    if label in WORKOUT_LABELS:
        return WORKOUT_LABELS[label]
    try:
        value = float(label)
    except ValueError:
        value = math.nan
    if value.is_integer() and int(value) in WORKOUT_CODES:
        return int(value)
    raise ValueError(f"Workout Type {_shown(text)} is not one Strava uses")


def _parse_date(text: str, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    """An export timestamp (UTC) as a naive local datetime in `tz`."""
    if not text:
        raise ValueError("no date")
    for fmt in EXPORT_DATE_FORMATS:
        try:
            when = dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        if not FIRST_YEAR <= when.year <= LAST_YEAR:
            raise ValueError(f"date {_shown(text)} is out of range ({FIRST_YEAR}-{LAST_YEAR})")
        return when.astimezone(tz).replace(tzinfo=None)
    raise ValueError(f"unreadable date {_shown(text)}")


def _shown(text: str, width: int = 40) -> str:
    """A cell quoted for a message, cut short if long (a cell can hold a whole description)."""
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _number(text: str) -> float:
    """A number as the export writes it (thousands separators allowed): finite, not negative."""
    value = float(text.replace(",", ""))
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(text)
    return value


def parse_race(text: str) -> Race:
    """A `--race` value: DATE or DATE:KM (e.g. 2025-06-01:21.1); runner.InputError if not."""
    on, _, km = text.partition(":")
    day = runner.parse_date(on, "--race")
    if not km.strip():
        return Race(day)
    try:
        distance_km = float(km)
    except ValueError:
        distance_km = math.nan
    if not 0 < distance_km <= 400:  # the runner's settings' own bounds; NaN fails too
        raise runner.InputError(
            f"--race distance must be in km, more than 0 and at most 400, not {km.strip()!r}"
        )
    return Race(day, distance_km * 1000)


def replay(
    runs: Iterable[ActivityInfo],
    *,
    units: str = "km",
    massages: Iterable[dt.date] = (),
    races: Iterable[Race | dt.date] = (),
    settings: AdviceSettings = DEFAULTS,
) -> list[PreviewNote]:
    """The note every run would have got, in order, as if the runner had connected before it.

    Before each run, the runner's next race (date and distance) is the first of `races` on or
    after its day, as if they had entered it in their settings; the advice itself then takes
    the main run on a race's date as the race. A bare date is a race of unknown distance.
    """
    runs = sorted(runs, key=lambda r: (r.start_date_local, r.id))
    if not runs:
        return []
    distance_on: dict[dt.date, float | None] = {}
    for race in races:
        race = race if isinstance(race, Race) else Race(race)
        # The same date twice: a given distance wins over none.
        distance_on[race.on] = race.distance_m or distance_on.get(race.on)
    race_days = sorted(distance_on)
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
            i = bisect_left(race_days, day)
            athlete.next_race_on = race_days[i] if i < len(race_days) else None
            athlete.next_race_distance_m = distance_on.get(athlete.next_race_on or day)
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
                    wording_id=note.wording_id,
                    is_session=note.is_session,
                )
            )
    db.dispose()
    return out


def weeks(notes: Sequence[PreviewNote]) -> list[ledger.Week]:
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
        total = sum(n.distance_m for n in items)
        rolling28 = running[hi] - running[lo]
        out.append(ledger.Week(start, total, rolling28_m=rolling28, notes=tuple(items)))
    return out


def skipped_rows(export: Export, limit: int | None = None) -> Iterator[str]:
    """The rows left out, a line each (`limit` of them, then how many more)."""
    bad = export.unreadable_rows
    if not bad:
        return
    yield f"warning: {len(bad)} unreadable row(s) skipped:"
    yield from (f"  {row}" for row in bad[:limit])
    if limit is not None and len(bad) > limit:
        yield f"  ... and {len(bad) - limit} more"


def format_preview(
    export: Export, notes: Sequence[PreviewNote], units: str = "km", full: bool = False
) -> Iterator[str]:
    """The printed report: a line per week, a line per note, and a summary of the rules."""
    u: Units = "mi" if units == "mi" else "km"
    if not notes:
        yield "No runs found in the export, so there is nothing to preview."
        yield from skipped_rows(export, limit=SKIPPED_SHOWN)
        return
    yield (
        f"{len(notes)} runs from {notes[0].local_date} to {notes[-1].local_date} "
        f"({export.other_activities} other activities left out)"
    )
    yield from skipped_rows(export, limit=SKIPPED_SHOWN)
    for week in weeks(notes):
        yield ""
        yield (
            f"week of {week.start}  {len(week.notes)} run(s)  {format_distance(week.metres, u)}"
            f"  (28 days: {format_distance(week.rolling28_m, u)})"
        )
        for note in week.notes:
            label = kind_label(note.kind)
            yield (
                f"  {note.local_date:%a %d %b}  {format_distance(note.distance_m, u):>9}"
                f"  {label:<12} {note.reason}"
            )
            if full:
                yield from ("      " + line for line in note.text.splitlines())
    counts = Counter(n.kind for n in notes)
    yield ""
    # The engine's kinds in priority order, then any kind it has not listed yet.
    order = [*KIND_LABELS, *sorted(counts.keys() - KIND_LABELS.keys())]
    yield "notes by rule: " + ", ".join(f"{kind_label(k)} {counts[k]}" for k in order if counts[k])
    sessions = sum(n.is_session for n in notes)
    yield f"session suggestions: {sessions} of {len(notes)} notes"


def zone(name: str) -> dt.tzinfo:
    """A time zone by IANA name, for the export's UTC start times."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise ExportError(f"unknown time zone {name!r} (use a name like Europe/London)") from None


__all__ = [
    "KIND_LABELS",
    "BadRow",
    "Export",
    "ExportError",
    "PreviewNote",
    "Race",
    "format_preview",
    "kind_label",
    "parse_race",
    "read_export",
    "replay",
    "skipped_rows",
]
