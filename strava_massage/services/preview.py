"""Replay a runner's Strava bulk export through the advice rules, writing nothing anywhere.

The replay uses the same ledger and the same `decide_note` as the worker, on a throwaway
in-memory SQLite database, so what it prints is what the service would have written.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import lzma
import math
import re
import statistics
import unicodedata
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

from babel.dates import get_month_names

from strava_massage.advice import (
    DEFAULTS,
    KINDS,
    METRES_PER_MILE,
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
    units: Units | None = None  # the runner's units, when the export shows them
    other_types: dict[str, int] = field(default_factory=dict)  # what the other activities are


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


# -- the export's columns ----------------------------------------------------------------------

# The header names each column goes by, best first: Strava's English names, the older and
# shorter ones (an export from 2018 says `id,date,type,distance,elapsed_time`), and the German
# export's. Headers are compared without case, "_" as a space, and a "(unit)" after the name
# left off. A newer English export also has a "Type" column of its own, far to the right: the
# first name found wins, so "Activity Type" is taken before it.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "id": ("activity id", "id", "aktivitäts-id"),
    "date": ("activity date", "date", "aktivitätsdatum"),
    "type": ("activity type", "type", "aktivitätsart"),
    "moving": ("moving time", "bewegungszeit"),
    "elapsed": ("elapsed time", "verstrichene zeit"),
    "workout": ("workout type",),
}
DISTANCE_NAMES = frozenset({"distance", "distanz"})
# Metres in a unit a header can name, as in "Distance (km)".
HEADER_UNITS: dict[str, float] = {
    "m": 1.0,
    "metres": 1.0,
    "meters": 1.0,
    "km": 1000.0,
    "mi": METRES_PER_MILE,
    "miles": METRES_PER_MILE,
}
# One Distance column with no unit in its header: Strava's exports of 2018 wrote it in metres,
# those of 2019 in km. The values tell which: a median run over 100 can only be metres (no
# runner's typical run is 100 km) and one under 100 can only be km (nor is it 100 m).
METRES_IF_MEDIAN_OVER = 100.0
# The runs' labels in the export's other languages (English ones are Strava's sport types).
RUN_LABELS = {
    "lauf": "Run",
    "course à pied": "Run",
    "carrera": "Run",
    "corsa": "Run",
    "hardlopen": "Run",
    "corrida": "Run",
    "trail run": "TrailRun",
    "virtual run": "VirtualRun",
}


@dataclass(frozen=True)
class _Columns:
    """Where each column is; the distance's own column, its unit if the header says, and the
    first of two distance columns (the runner's km or mi beside Strava's metres)."""

    where: dict[str, int | None]
    metres_per_unit: float | None  # None: decided from the values (METRES_IF_MEDIAN_OVER)
    units: Units | None = None  # what the header says the distance is in, if km or mi


def _header_name(cell: str) -> tuple[str, str | None]:
    """A header cell as (name, unit): "Distance (km)" -> ("distance", "km")."""
    text = " ".join(cell.replace("_", " ").split()).casefold()
    bracketed = re.fullmatch(r"(.*?)\s*\(([^()]*)\)", text)
    if bracketed:
        return bracketed.group(1), bracketed.group(2).strip()
    return text, None


def _columns(header: Sequence[str]) -> _Columns:
    """Find each column the replay reads; ExportError names the ones missing."""
    names = [_header_name(h) for h in header]

    def find(role: str) -> int | None:
        for alias in COLUMN_NAMES[role]:
            found = [i for i, (name, _) in enumerate(names) if name == alias]
            if found:
                # Strava repeats Elapsed Time; the second one is the plain number of seconds.
                return found[-1] if role == "elapsed" else found[0]
        return None

    where = {role: find(role) for role in COLUMN_NAMES}
    distances = [i for i, (name, _) in enumerate(names) if name in DISTANCE_NAMES]
    named = [(HEADER_UNITS[u], i) for i in distances if (u := names[i][1]) in HEADER_UNITS]
    factor: float | None = None
    units: Units | None = None
    where["display"] = None
    if named:
        # A header that names its unit is believed; with several, the finest (metres) is read.
        factor, where["distance"] = min(named)
        unit = names[where["distance"] or 0][1]
        units = "km" if unit == "km" else "mi" if unit in ("mi", "miles") else None
    elif len(distances) > 1:
        # Strava's export repeats "Distance": first in the runner's km or mi, written in their
        # language (a decimal comma, swims in metres), then in metres, always as a plain number.
        factor, where["distance"], where["display"] = 1.0, distances[-1], distances[0]
    else:
        where["distance"] = distances[0] if distances else None
    missing = [role for role in ("date", "type", "distance") if where[role] is None]
    if missing:
        raise ExportError(
            "this does not look like Strava's activities.csv: no "
            + ", ".join(repr(n.title()) for n in missing)
            + " column"
        )
    return _Columns(where, factor, units)


def parse_activities(text: str, tz: dt.tzinfo = dt.UTC) -> Export:
    """Parse the export's CSV text into runs, with local start times in `tz`.

    How a column writes its numbers (a decimal point or comma) and dates (a day-first or
    month-first 03/04/2026) is decided once for the whole column, from the rows that show it,
    so one row cannot be read one way and the next another. A row that cannot be read is left
    out and listed in `unreadable_rows` with its line number (the line it starts on: a quoted
    description may span several) and the reason.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise ExportError(f"the header line cannot be read as CSV ({e})") from None
    if not header:
        raise ExportError("the file is empty")
    columns = _columns(header)
    rows: list[tuple[int, _Row, str]] = []  # (line, cells, sport type) of each run
    others: Counter[str] = Counter()
    bad: list[BadRow] = []
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
        cell = _Row(row, columns.where)
        sport = run_type(cell.get("type"))
        if sport is None:
            others[cell.get("type") or "no type"] += 1
            continue
        rows.append((line, cell, sport))
    dates = [_date_fields(cell.get("date")) for _, cell, _ in rows]
    stamps = [s for s in dates if isinstance(s, _Stamp)]
    reading = _Reading.of(columns, [cell for _, cell, _ in rows], stamps)
    read: list[tuple[int, int | None, ActivityInfo]] = []  # (line, activity id given, run)
    first_line_of: dict[int, int] = {}  # activity id -> the line that gave it
    for (line, cell, sport), stamp in zip(rows, dates, strict=True):
        try:
            activity_id = _activity_id(cell.get("id"))
            start = _local_start(cell.get("date"), stamp, reading.day_first, tz)
            run = _run(cell, sport, start, reading, activity_id or 0)
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
    return Export(
        runs=runs,
        other_activities=others.total(),
        unreadable_rows=sorted(bad),
        units=reading.units,
        other_types=dict(others.most_common()),
    )


def run_type(label: str) -> str | None:
    """The Strava sport type of a run's label in the export ("Run", "Lauf", "Trail Run"), or
    None when the activity is not a run."""
    if label in DEFAULTS.sport_types:
        return label
    key = " ".join(label.split()).casefold()
    for sport in DEFAULTS.sport_types:
        if key == sport.casefold():
            return sport
    translated = RUN_LABELS.get(key)
    return translated if translated in DEFAULTS.sport_types else None


class _Row:
    """One CSV row, read by column role."""

    def __init__(self, row: list[str], where: dict[str, int | None]) -> None:
        self._row, self._where = row, where

    def get(self, name: str) -> str:
        """The stripped cell for a role, or "" when the column or cell is missing."""
        i = self._where[name]
        return self._row[i].strip() if i is not None and i < len(self._row) else ""


@dataclass(frozen=True)
class _Reading:
    """How the export's columns are written, decided once for each column."""

    distance_mark: str  # the decimal mark: "." or ","
    metres_per_unit: float
    time_mark: str
    day_first: bool | None  # for dates like 03/04/2026; None when no row shows it
    units: Units | None  # the unit of the runner's own distance column, when it tells

    @classmethod
    def of(cls, columns: _Columns, cells: Sequence[_Row], stamps: Iterable[_Stamp]) -> _Reading:
        """Look at every run's cells and decide how each column is written."""
        distance_mark = _decimal_mark(c.get("distance") for c in cells)
        times = [t for c in cells for t in (c.get("moving"), c.get("elapsed"))]
        factor, units = columns.metres_per_unit, columns.units
        if factor is None:
            factor = _metres_per_unit([c.get("distance") for c in cells], distance_mark)
        if columns.where["display"] is not None:
            units = _display_units(cells, distance_mark)
        return cls(distance_mark, factor, _decimal_mark(times), _day_first(stamps), units)


def _run(
    cell: _Row, sport: str, start: dt.datetime, reading: _Reading, activity_id: int
) -> ActivityInfo:
    """The run a row describes; ValueError with the reason when a cell makes no sense."""
    distance = cell.get("distance")
    try:
        distance_m = _number(distance, reading.distance_mark) * reading.metres_per_unit
    except ValueError:
        raise ValueError(f"distance {_shown(distance)} is not a distance") from None
    if distance_m > MAX_DISTANCE_M:
        raise ValueError(f"distance {_shown(distance)} is too long for one run")
    duration = cell.get("moving") or cell.get("elapsed") or "0"
    try:
        seconds = _seconds(duration, reading.time_mark)
    except ValueError:
        raise ValueError(f"time {_shown(duration)} is not a number of seconds") from None
    if seconds > MAX_SECONDS:
        raise ValueError(f"time {_shown(duration)} is too long for one run")
    return ActivityInfo(
        id=activity_id,
        athlete_id=PREVIEW_ATHLETE,
        sport_type=sport,
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


# -- numbers -----------------------------------------------------------------------------------

# A number with `mark` before its decimals and the other mark (or a space) between thousands.
NUMBER = {
    ".": re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+"),
    ",": re.compile(r"(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d*)?|,\d+"),
}
# Numbers only one of the marks can have written: "8.02", "1,234.5" and "1,234,567" need a
# decimal point; "8,02", "1.234,5" and "1.234.567" a decimal comma. "1,234" could be either.
ONLY_WITH = {
    ".": re.compile(r"\d{1,3}(?:,\d{3})+\.\d+|\d+\.(?:\d{1,2}|\d{4,})|\d{1,3}(?:,\d{3}){2,}"),
    ",": re.compile(r"\d{1,3}(?:\.\d{3})+,\d+|\d+,(?:\d{1,2}|\d{4,})|\d{1,3}(?:\.\d{3}){2,}"),
}
THOUSANDS_SPACE = re.compile(r"(?<=\d)[ \u00a0\u202f](?=\d{3}(?!\d))")  # "8 020,5" in French
CLOCK = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2}(?:[.,]\d+)?)")  # 1:05:12 or 35:12


def _number(text: str, mark: str = ".") -> float:
    """A number as the export writes it, with `mark` as its decimal mark: finite, not negative.

    The other mark, or a space, may separate thousands; anything else is a ValueError, so a
    decimal comma in a column of decimal points is refused, not read as a thousands separator.
    """
    plain = THOUSANDS_SPACE.sub("", text.strip())
    if not NUMBER[mark].fullmatch(plain):
        raise ValueError(text)
    value = float(plain.replace("," if mark == "." else ".", "").replace(mark, "."))
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _decimal_mark(cells: Iterable[str]) -> str:
    """The decimal mark a column uses: "," when more of its cells need a comma than a point."""
    votes = Counter(
        mark
        for cell in cells
        for mark, pattern in ONLY_WITH.items()
        if pattern.fullmatch(THOUSANDS_SPACE.sub("", cell.strip()))
    )
    return "," if votes[","] > votes["."] else "."


def _seconds(text: str, mark: str) -> float:
    """A time as seconds ("1980", "1980,0") or as a clock ("0:33:00", "33:00")."""
    clock = CLOCK.fullmatch(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))
    return _number(text, mark)


def _metres_per_unit(cells: Sequence[str], mark: str) -> float:
    """Metres or km for a lone distance column with no unit: see METRES_IF_MEDIAN_OVER."""
    values = []
    for cell in cells:
        try:
            values.append(_number(cell, mark))
        except ValueError:
            continue
    return 1.0 if values and statistics.median(values) > METRES_IF_MEDIAN_OVER else 1000.0


def _display_units(cells: Sequence[_Row], metres_mark: str) -> Units | None:
    """km or mi for the runner's own distance column, from its ratio to the metres column."""
    mark = _decimal_mark(c.get("display") for c in cells)
    ratios = []
    for cell in cells:
        try:
            shown = _number(cell.get("display"), mark)
            metres = _number(cell.get("distance"), metres_mark)
        except ValueError:
            continue
        if shown > 0 and metres > 0:
            ratios.append(metres / shown)
    if not ratios:
        return None
    ratio = statistics.median(ratios)
    choices: tuple[tuple[Units, float], ...] = (("km", 1000.0), ("mi", METRES_PER_MILE))
    for units, per_unit in choices:
        if abs(ratio / per_unit - 1) < 0.02:  # the shown figure has two decimals
            return units
    return None


# -- dates -------------------------------------------------------------------------------------

# Languages whose month names the export's dates may use ("Dec", "Dez.", "déc.", "dic").
MONTH_LOCALES = (
    "en", "de", "fr", "es", "it", "nl", "pt", "ru", "pl", "sv", "da", "nb", "fi", "cs", "tr",
)  # fmt: skip
ENGLISH_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
# Words a date may hold besides a month ("3 de dic. de 2026", "24 mai 2012 à 16:27:40").
DATE_FILLERS = frozenset(
    {"de", "del", "à", "a", "at", "um", "om", "kl", "klo", "г", "às", "utc", "gmt"}
)
MERIDIEM = {"am": 0, "pm": 12, "午前": 0, "上午": 0, "오전": 0, "午後": 12, "下午": 12, "오후": 12}
CLOCK_IN_DATE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Stamp(NamedTuple):
    """The fields of a date cell; with `slashed` (03/04/2026), day and month may be swapped."""

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    timed: bool = True
    slashed: bool = False


def _unaccented(text: str) -> str:
    """The text without accents: "déc" -> "dec"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@functools.cache
def _month_names() -> tuple[dict[str, int], tuple[tuple[str, int], ...]]:
    """Each month's names in MONTH_LOCALES, lower case without a final dot: a lookup of the
    exact names (those two months share are dropped) and the full names, for prefixes."""
    months: dict[str, set[int]] = {}
    wide: set[tuple[str, int]] = set()
    for locale in MONTH_LOCALES:
        for width in ("abbreviated", "wide"):
            for context in ("format", "stand-alone"):
                for month, name in get_month_names(width, context, locale).items():
                    key = name.casefold().rstrip(".")
                    for variant in (key, _unaccented(key)):
                        months.setdefault(variant, set()).add(month)
                        if width == "wide":
                            wide.add((variant, month))
    exact = {name: next(iter(ms)) for name, ms in months.items() if len(ms) == 1}
    return exact, tuple(sorted(wide))


def _month(word: str) -> int | None:
    """The month a word names, in any of MONTH_LOCALES ("Dec", "Dez", "sept", "déc"), or None."""
    key = word.casefold()
    # English first: most exports use it, and it spares loading every language's names.
    english = [
        n for n, name in enumerate(ENGLISH_MONTHS, 1) if len(key) >= 3 and name.startswith(key)
    ]
    if len(english) == 1:
        return english[0]
    exact, wide = _month_names()
    for variant in (key, _unaccented(key)):
        if variant in exact:
            return exact[variant]
    if len(key) < 3:
        return None
    found = {month for name, month in wide if name.startswith(key)}
    return found.pop() if len(found) == 1 else None


def _split_date(text: str) -> _Stamp:
    """The fields of a date as Strava's exports write it in their languages, e.g.
    "Dec 3, 2026, 7:05:12 AM", "3 Dec 2026, 07:05:12", "03.12.2026, 07:05:12",
    "3 déc. 2026 à 07:05:12", "2026-12-03 07:05:12" or "2026-12-03T07:05:12Z"."""
    unreadable = ValueError(f"unreadable date {_shown(text)}")
    if not text:
        raise ValueError("no date")
    if ISO_DATE.match(text):
        try:
            when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] == "Z" else text)
        except ValueError:
            raise unreadable from None
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC)
        fields = when.timetuple()[:6]
        return _Stamp(*fields, timed=len(text) > len("2026-12-03"))
    clocks = list(CLOCK_IN_DATE.finditer(text))
    if len(clocks) > 1:
        raise unreadable
    hour = minute = second = 0
    rest = text
    if clocks:
        clock = clocks[0]
        hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        rest = text[: clock.start()] + " " + text[clock.end() :]
    rest = re.sub(r"(?i)(?<![^\W\d_])([ap])\.\s?m\.", r"\1m", rest)  # "p.m." -> "pm"
    rest = re.sub("[年月日년월일]", " ", rest)  # 2026年12月3日
    month, meridiem = None, None
    for word in re.findall(r"[^\W\d_]+", rest):
        key = word.casefold()
        if key in MERIDIEM and clocks and meridiem is None:
            meridiem = MERIDIEM[key]
        elif key not in DATE_FILLERS and (month is not None or (month := _month(word)) is None):
            raise unreadable  # a second month, or a word that is no month
    if meridiem is not None:
        if not 1 <= hour <= 12:
            raise unreadable
        hour = hour % 12 + meridiem
    numbers = re.findall(r"\d+", rest)
    if month is not None:
        years = [n for n in numbers if len(n) == 4]
        days = [n for n in numbers if len(n) <= 2]
        if len(numbers) != 2 or len(years) != 1 or len(days) != 1:
            raise unreadable
        return _Stamp(int(years[0]), month, int(days[0]), hour, minute, second, bool(clocks))
    if len(numbers) != 3:
        raise unreadable
    first, second_, last = numbers
    if len(first) == 4 and len(second_) <= 2 and len(last) <= 2:  # 2026/12/03, 2026. 12. 3.
        return _Stamp(int(first), int(second_), int(last), hour, minute, second, bool(clocks))
    if len(first) > 2 or len(second_) > 2 or len(last) not in (2, 4):
        raise unreadable
    year = int(last) + (2000 if len(last) == 2 else 0)
    marks = set(re.findall(r"\d\s*([./-])\s*(?=\d)", rest))
    if marks == {"/"}:  # 03/12/2026: a spreadsheet's, day or month first
        return _Stamp(year, int(second_), int(first), hour, minute, second, bool(clocks), True)
    if marks and marks <= {".", "-"}:  # 03.12.2026, 3-12-2026: day first
        return _Stamp(year, int(second_), int(first), hour, minute, second, bool(clocks))
    raise unreadable


def _date_fields(text: str) -> _Stamp | str:
    """The fields of a date cell, or why it cannot be read."""
    try:
        return _split_date(text)
    except ValueError as e:
        return str(e)


def _day_first(stamps: Iterable[_Stamp]) -> bool | None:
    """Whether the column's 03/04/2026 dates put the day first, as its other rows show (a day
    over 12 in first or in second place); None when no row shows it."""
    votes = Counter(s.day > 12 for s in stamps if s.slashed and (s.day > 12) != (s.month > 12))
    if votes[True] == votes[False]:
        return None
    return votes[True] > votes[False]


def _local_start(
    text: str, stamp: _Stamp | str, day_first: bool | None, tz: dt.tzinfo
) -> dt.datetime:
    """A run's start as a naive local datetime in `tz` (the export's times are UTC; a date
    with no time is taken as the local day itself)."""
    if isinstance(stamp, str):
        raise ValueError(stamp)
    if stamp.slashed and day_first is None:
        if max(stamp.day, stamp.month) <= 12:
            raise ValueError(
                f"date {_shown(text)} could be day/month or month/day, and no other row shows which"
            )
        day_first = stamp.day > 12  # only one way can be a date (or neither: unreadable below)
    if stamp.slashed and not day_first:
        stamp = stamp._replace(month=stamp.day, day=stamp.month)
    if not FIRST_YEAR <= stamp.year <= LAST_YEAR:
        raise ValueError(f"date {_shown(text)} is out of range ({FIRST_YEAR}-{LAST_YEAR})")
    try:
        when = dt.datetime(*stamp[:6])
    except ValueError:
        raise ValueError(f"unreadable date {_shown(text)}") from None
    if not stamp.timed:
        return when
    return when.replace(tzinfo=dt.UTC).astimezone(tz).replace(tzinfo=None)


def _shown(text: str, width: int = 40) -> str:
    """A cell quoted for a message, cut short if long (a cell can hold a whole description)."""
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def refusal(export: Export, name: str) -> str | None:
    """Why the export cannot be previewed at all (no run in it could be read), or None."""
    if export.runs or not export.unreadable_rows:
        return None
    first, *more = export.unreadable_rows
    also = f" ({count(len(more), 'more row')} too)" if more else ""
    return f"{name} line {first.line}: {first.reason}{also}; no run in it could be read"


def count(n: int, thing: str, things: str | None = None) -> str:
    """A number and its noun: "1 run", "3 runs", "1 other activity"."""
    return f"{n} {thing if n == 1 else things or thing + 's'}"


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
    others = count(export.other_activities, "other activity", "other activities")
    if not notes:
        yield "No runs found in the export, so there is nothing to preview."
        if export.other_types:
            kinds = ", ".join(f"{kind} {n}" for kind, n in export.other_types.items())
            yield f"It holds {others}: {kinds}."
        yield from skipped_rows(export, limit=SKIPPED_SHOWN)
        return
    yield (
        f"{count(len(notes), 'run')} from {notes[0].local_date} to {notes[-1].local_date} "
        f"({others} left out)"
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
    "count",
    "format_preview",
    "kind_label",
    "parse_activities",
    "parse_race",
    "read_export",
    "refusal",
    "replay",
    "run_type",
    "skipped_rows",
    "workout_type",
]
