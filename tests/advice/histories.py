"""Six runners' training histories, generated, to replay through the advice rules.

Each history comes from a week-by-week plan (in the style of tests/data/make_export.py) and a
seeded `random.Random` of its own, so it is the same on every run: easy runs and workouts get a
little noise, long runs less, races none, start times a few minutes, and each week is then held
to the plan's total exactly, so a jump in volume is where the plan puts one and nowhere else.

    python -m tests.advice.histories DIR

writes each history as a Strava-like DIR/<name>.csv and prints the `strava-massage preview`
command line that replays it with the real CLI.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import itertools
import random
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from strava_massage.domain.activity import ActivityInfo
from strava_massage.services import preview
from strava_massage.services.preview import PreviewNote, Race

Units = Literal["km", "mi"]
METRES_PER_MILE = 1609.344
ATHLETE = 1
WORKOUT_RACE, WORKOUT_LONG_RUN, WORKOUT_WORKOUT = 1, 2, 3
JUMP = 1.3  # L2: a week over 1.3x the week before is a real jump
LAYOFF_DAYS = 10  # this many days or more without a run is a layoff

# A week of a plan is (total, days). `days` holds seven fields, Monday first: "-" for a rest day,
# "+" between the runs of one day (a double, or a race's warm-up and cool-down). A run is a
# distance in the history's units ("k" after it: in kilometres), then its kind: nothing for an
# easy run, "w" a workout (tagged 3), "L" a long run (tagged 2), "R" a race tagged 1, "r" a race
# left untagged. Easy runs and workouts share what the total leaves after the long runs and
# races; a total of None keeps their planned distances (with noise).
Week = tuple[float | None, str]
RUN = re.compile(r"(?P<distance>\d+(?:\.\d+)?)(?P<km>k?)(?P<kind>[wLRr]?)")
TAGS = {"w": WORKOUT_WORKOUT, "L": WORKOUT_LONG_RUN, "R": WORKOUT_RACE}
FIXED = {"L", "R", "r"}
RACES = {"R", "r"}


@dataclass(frozen=True)
class Layoff:
    """A break of 10+ days without a run, and the volume before it."""

    last_run: dt.date  # the last run before the break
    first_back: dt.date  # the first run after it
    old_week_m: float  # average of the four ISO weeks before the week the break starts in
    back_on: dt.date | None  # first run whose 7-day distance is back at old_week_m (None: never)

    @property
    def days_off(self) -> int:
        """Whole days without a run."""
        return (self.first_back - self.last_run).days - 1


@dataclass(frozen=True)
class History:
    """One runner's runs and settings, and what the properties need to know about them."""

    name: str
    description: str
    units: Units
    tz: str  # IANA zone the runner lives in (the export stores UTC)
    runs: list[ActivityInfo]  # oldest first, as the replay orders them
    massages: list[dt.date]  # sessions the runner logged
    races: list[Race]  # the races the runner set in their settings
    race_days: list[dt.date]  # dates of the runs that are races, tagged or not
    jump_weeks: list[dt.date]  # Mondays of the weeks over 1.3x the week before
    layoff: Layoff | None
    beginner: bool = False  # under 30 km a week: races and the monthly check-in only
    expected_kinds: tuple[str, ...] = ()  # rules a coach expects to fire at least once

    def race_run_ids(self) -> set[int]:
        """The race run of each race day: the one tagged 1, else the day's longest."""
        ids = set()
        for day in self.race_days:
            that_day = [r for r in self.runs if r.start_date_local.date() == day]
            tagged = [r for r in that_day if r.workout_type == WORKOUT_RACE]
            ids.add((tagged or [max(that_day, key=lambda r: r.distance_m)])[0].id)
        return ids


@dataclass(frozen=True)
class _Planned:
    """One run of a plan, before noise."""

    distance: float  # in the history's units
    kind: str  # "", "w", "L", "R" or "r"


def _parse_day(field: str, unit_m: float) -> list[_Planned]:
    """The runs of one day field of a plan."""
    if field == "-":
        return []
    out = []
    for token in field.split("+"):
        match = RUN.fullmatch(token)
        if match is None:
            raise ValueError(f"unreadable run {token!r} in {field!r}")
        distance = float(match["distance"])
        if match["km"]:
            distance = distance * 1000 / unit_m
        out.append(_Planned(distance, match["kind"]))
    return out


def _pace_s_per_km(kind: str, km: float, easy: float) -> float:
    """Moving pace of a run, from the runner's easy pace."""
    if kind in RACES:
        return easy * (0.80 if km < 11 else 0.84 if km < 22 else 0.88 if km < 43 else 1.05)
    return easy * {"w": 0.92, "L": 1.04}.get(kind, 1.0)


def _generate(
    plan: Sequence[Week],
    *,
    first_monday: dt.date,
    units: Units,
    seed: int,
    id_base: int,
    easy_pace: float,
) -> list[ActivityInfo]:
    """The runs of a plan: noisy distances held to each week's total, and start times."""
    rng = random.Random(seed)
    unit_m = METRES_PER_MILE if units == "mi" else 1000.0
    runs: list[ActivityInfo] = []
    for week, (total, days) in enumerate(plan):
        fields = days.split()
        if len(fields) != 7:
            raise ValueError(f"week {week + 1} has {len(fields)} days: {days!r}")
        monday = first_monday + dt.timedelta(weeks=week)
        planned = [(day, _parse_day(field, unit_m)) for day, field in enumerate(fields)]
        flat = [run for _, day_runs in planned for run in day_runs]
        # Noise first, then hold the easy runs and workouts to what the week has left.
        noisy = [
            run.distance
            if run.kind in RACES
            else run.distance * rng.uniform(0.99, 1.01)
            if run.kind == "L"
            else run.distance * rng.uniform(0.9, 1.1)
            for run in flat
        ]
        free = [i for i, run in enumerate(flat) if run.kind not in FIXED]
        if total is not None and free:
            left = total - sum(d for i, d in enumerate(noisy) if i not in free)
            scale = left / sum(noisy[i] for i in free)
            for i in free:
                noisy[i] = round(noisy[i] * scale, 2)
            noisy[free[-1]] = round(left - sum(noisy[i] for i in free[:-1]), 2)
        distances = iter(noisy)
        for day, day_runs in planned:
            date = monday + dt.timedelta(days=day)
            race = next((i for i, run in enumerate(day_runs) if run.kind in RACES), None)
            clock = dt.datetime.combine(date, dt.time(6, 30)) + dt.timedelta(
                minutes=rng.randint(0, 50)
            )
            if race is not None:
                clock = dt.datetime.combine(date, dt.time(8, 10))
            for i, run in enumerate(day_runs):
                distance = next(distances)
                km = distance * unit_m / 1000
                pace = _pace_s_per_km(run.kind, km, easy_pace)
                if run.kind not in RACES:
                    pace *= rng.uniform(0.97, 1.03)
                seconds = int(km * pace)
                if race is not None and i == race:
                    clock = dt.datetime.combine(date, dt.time(9, 0))
                elif race is None and i > 0:  # a double: the second run in the evening
                    clock = dt.datetime.combine(date, dt.time(17, 45)) + dt.timedelta(
                        minutes=rng.randint(0, 45)
                    )
                runs.append(
                    ActivityInfo(
                        id=id_base + len(runs) + 1,
                        athlete_id=ATHLETE,
                        sport_type="Run",
                        distance_m=round(distance * unit_m, 1),
                        moving_time_s=seconds,
                        start_date_local=clock,
                        timezone=None,
                        workout_type=TAGS.get(run.kind),
                        description="",
                        private_note=None,
                    )
                )
                # The next run of a race day starts after this one (and a short break).
                clock += dt.timedelta(seconds=seconds, minutes=rng.randint(8, 15))
    return runs


# -- reading a history's runs --------------------------------------------------------------------


def week_start(day: dt.date) -> dt.date:
    """Monday of the ISO week holding `day`."""
    return day - dt.timedelta(days=day.weekday())


def week_totals(runs: Sequence[ActivityInfo]) -> dict[dt.date, float]:
    """Metres run in each ISO week from the first run's to the last's (empty weeks as 0)."""
    if not runs:
        return {}
    first = week_start(runs[0].start_date_local.date())
    last = week_start(runs[-1].start_date_local.date())
    totals = {first + dt.timedelta(weeks=n): 0.0 for n in range((last - first).days // 7 + 1)}
    for run in runs:
        totals[week_start(run.start_date_local.date())] += run.distance_m
    return totals


def rolling7_m(runs: Sequence[ActivityInfo], day: dt.date) -> float:
    """Metres run in the 7 days ending on `day`."""
    return sum(r.distance_m for r in runs if 0 <= (day - r.start_date_local.date()).days < 7)


def jump_weeks(runs: Sequence[ActivityInfo]) -> list[dt.date]:
    """Mondays of the weeks over 1.3x a week before them that had runs (L2)."""
    totals = list(week_totals(runs).items())
    return [
        monday
        for (_, before), (monday, now) in itertools.pairwise(totals)
        if before > 0 and now > JUMP * before
    ]


def find_layoff(runs: Sequence[ActivityInfo]) -> Layoff | None:
    """The first break of 10+ days without a run, if any."""
    days = sorted({r.start_date_local.date() for r in runs})
    for last, back in itertools.pairwise(days):
        if (back - last).days - 1 < LAYOFF_DAYS:
            continue
        totals = week_totals(runs)
        broke = week_start(last + dt.timedelta(days=1))
        before = [totals.get(broke - dt.timedelta(weeks=n), 0.0) for n in range(1, 5)]
        old = sum(before) / 4
        back_on = next((d for d in days if d >= back and rolling7_m(runs, d) >= old), None)
        return Layoff(last, back, old, back_on)
    return None


def _history(
    name: str,
    description: str,
    plan: Sequence[Week],
    *,
    first_monday: dt.date,
    units: Units,
    tz: str,
    seed: int,
    easy_pace: float,
    massages: Sequence[dt.date] = (),
    beginner: bool = False,
    expected_kinds: tuple[str, ...] = (),
) -> History:
    """A History from its plan; every race in the plan is one the runner set, at its distance."""
    runs = _generate(
        plan,
        first_monday=first_monday,
        units=units,
        seed=seed,
        id_base=14_000_000_000 + seed * 1000,
        easy_pace=easy_pace,
    )
    unit_m = METRES_PER_MILE if units == "mi" else 1000.0
    # The race runs, as planned (a race is the only run of its kind on its day).
    race_days: list[dt.date] = []
    races: list[Race] = []
    for week, (_, days) in enumerate(plan):
        for weekday, field in enumerate(days.split()):
            for run in _parse_day(field, unit_m):
                if run.kind in RACES:
                    day = first_monday + dt.timedelta(weeks=week, days=weekday)
                    race_days.append(day)
                    races.append(Race(day, distance_m=round(run.distance * unit_m, 1)))
    return History(
        name=name,
        description=description,
        units=units,
        tz=tz,
        runs=runs,
        massages=list(massages),
        races=races,
        race_days=race_days,
        jump_weeks=jump_weeks(runs),
        layoff=find_layoff(runs),
        beginner=beginner,
        expected_kinds=expected_kinds,
    )


# -- the six histories ---------------------------------------------------------------------------

MARATHON_PLAN: list[Week] = [
    (40, "- 7w 6 7w - 4 16L"),
    (44, "- 7w 7 7w - 5 18L"),
    (48, "- 8w 7 8w - 5 20L"),
    (41, "- 7w 6 7w - 5 16L"),  # cutback
    (49, "- 8w 7 8w - 5 21L"),
    (54, "- 8w 8 9w - 6 23L"),
    (59, "- 9w 8 9w - 8 25L"),
    (50, "- 8w 7 8w - 8 19L"),  # cutback
    (60, "- 9w 8 9w - 8 26L"),
    (57, "- 10w 9 10w - 6 21.1R"),  # the tune-up half marathon
    (64, "- 8 9 10w - 8 29L"),  # an easy Tuesday after it
    (72, "- 11w 10 11w - 10 30L"),
    (61, "- 9w 10 10w - 10 22L"),  # cutback
    (75, "- 11w 10 11w - 11 32L"),  # peak
    (58, "- 9w 8 9w - 8 24L"),  # taper
    (None, "- 8w 6 6 - 4 42.2R"),  # race week: the marathon on Sunday
]

TEN_K_PLAN: list[Week] = [
    (15, "- 3w 3 3w - 2 4L"),
    (16.5, "- 3w 3 3w - 3 4.5L"),
    (18, "- 3.5w 3 3.5w - 3 5L"),
    (15.3, "- 3w 3 3w - 2 4L"),  # cutback
    (19, "- 4w 3 4w - 2.5 5.5L"),
    (21.5, "- 4.5w 4 4.5w - 2.5 6L"),
    (24.5, "- 5w 4 5w 3 3 6.5L"),
    (28, "- 5w 5 5w 3 3 7L"),  # peak
    (23, "- 4w 4 4w - 4 6L"),  # taper
    # Race week: the 10 km on Saturday, untagged, between a warm-up and a cool-down.
    (None, "- 4w 3 3 - 1.5+10kr+1 3"),
]

_BEGINNER_WEEKS = [8.0, 9.0, 10.1, 8.6, 10.4, 11.6, 13.2, 11.2, 14.0, 12.9, 21.3, 12.0, 13.5, 14.5]
BEGINNER_PLAN: list[Week] = [(total, "- 3 - 3 - - 4") for total in _BEGINNER_WEEKS]

COMEBACK_PLAN: list[Week] = [
    *((total, "- 8w 7 8w - 5 12L") for total in (40, 41, 39.5, 40.5, 40, 41, 39, 40, 40.5)),
    (None, "- 8w 7 8w - 5 -"),  # ill from the Sunday: 16 days without a run
    (None, "- - - - - - -"),
    (None, "- - - - - - -"),
    (25, "- 5 4 5 - 4 7"),  # rebuilding from 15 km below the old 40
    (30, "- 6 5 6 - 4 9L"),
    (35, "- 7w 6 7w - 5 10L"),
    (41, "- 8w 7 8w - 6 12L"),  # back to normal
    (40.5, "- 8w 7 8w - 5 12L"),
    (41, "- 8w 7 8w - 5 12L"),
]

_A = "8 12w+6 14 12w 8 12 {}L"  # seven days, one double
_B = "- 12w+6 14 12w+6 10 12 {}L"  # six days, two doubles
HIGH_MILEAGE_PLAN: list[Week] = [
    (94, _A.format(24)),
    (98, _B.format(26)),
    (106, _A.format(28)),
    (90, _B.format(22)),  # cutback
    (100, _A.format(27)),
    (106, _B.format(29)),
    (110, _A.format(30)),
    (92, _B.format(23)),  # cutback
    (108, _A.format(30)),
    (120, _B.format(32)),  # peak
    (110, _A.format(30)),
    (92, _B.format(24)),  # cutback
    (106, _A.format(30)),
    (121, _B.format(33)),  # peak
    (108, _A.format(30)),
    (94, _B.format(25)),  # cutback
]

_ULTRA_WEEKS = [
    (60, 20, 14), (64, 22, 14), (69, 24, 15), (58, 20, 12),  # the last of each four: cutback
    (70, 25, 16), (75, 27, 17), (80, 28, 18), (67, 22, 14),
    (82, 30, 19), (86, 32, 20), (90, 34, 21), (75, 26, 16),
    (90, 35, 22), (72, 26, 16), (58, 20, 12),  # peak, then a two-week taper
]  # fmt: skip
ULTRA_PLAN: list[Week] = [
    *((total, f"- 9w 8 9w - {sat}L {sun}L") for total, sat, sun in _ULTRA_WEEKS),
    (None, "- 8w 8 6 - 50kR -"),  # race week: the 50 km on Saturday
]


def _dates(*iso: str) -> list[dt.date]:
    """Dates from ISO strings."""
    return [dt.date.fromisoformat(d) for d in iso]


HISTORIES: tuple[History, ...] = (
    _history(
        "marathon",
        "16-week marathon build, 40 to 75 km a week, a tune-up half in week 10",
        MARATHON_PLAN,
        first_monday=dt.date(2025, 6, 23),
        units="km",
        tz="Europe/London",
        seed=1,
        easy_pace=330,
        massages=_dates("2025-07-30", "2025-09-03"),  # mid-build; 3 days after the half
        expected_kinds=("long_run",),
    ),
    _history(
        "ten_k",
        "10-week 10 km plan in miles, 15 to 28 mi a week, the race left untagged",
        TEN_K_PLAN,
        first_monday=dt.date(2026, 1, 5),
        units="mi",
        tz="America/New_York",
        seed=2,
        easy_pace=345,
        massages=_dates("2026-03-06"),  # the day before the pre-race window opens
    ),
    _history(
        "beginner",
        "3 runs a week from 8 to 14 km, then a week from 12.9 to 21.3 km (+65 %)",
        BEGINNER_PLAN,
        first_monday=dt.date(2025, 3, 3),
        units="km",
        tz="Europe/London",
        seed=3,
        easy_pace=420,
        beginner=True,
    ),
    _history(
        "comeback",
        "steady 40 km weeks, 16 days ill, 3 weeks rebuilding from 25 km, back at 40",
        COMEBACK_PLAN,
        first_monday=dt.date(2025, 9, 1),
        units="km",
        tz="Europe/Dublin",
        seed=4,
        easy_pace=320,
        expected_kinds=("comeback",),
    ),
    _history(
        "high_mileage",
        "16 weeks at 90-110 km with doubles, two peak weeks of 120, a massage every 3 weeks",
        HIGH_MILEAGE_PLAN,
        first_monday=dt.date(2025, 1, 6),
        units="km",
        tz="Europe/Berlin",
        seed=5,
        easy_pace=285,
        massages=_dates("2025-01-15", "2025-02-05", "2025-02-26", "2025-03-19", "2025-04-09"),
        expected_kinds=("high_volume",),
    ),
    _history(
        "ultra",
        "16-week 50 km build, back-to-back long runs every weekend, the race on the last Saturday",
        ULTRA_PLAN,
        first_monday=dt.date(2026, 2, 2),
        units="km",
        tz="Europe/Madrid",
        seed=6,
        easy_pace=340,
        massages=_dates("2026-03-02", "2026-05-04"),
    ),
)
BY_NAME: dict[str, History] = {h.name: h for h in HISTORIES}


# -- replaying a history -------------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    """A history and the note each of its runs got (notes[i] is runs[i]'s)."""

    history: History
    runs: list[ActivityInfo]
    notes: list[PreviewNote]
    seconds: float  # how long the replay took


def replay_history(history: History) -> Replayed:
    """Replay a history through `preview.replay`: the real decision path, in memory."""
    started = time.perf_counter()
    notes = preview.replay(
        history.runs, units=history.units, massages=history.massages, races=history.races
    )
    seconds = time.perf_counter() - started
    runs = sorted(history.runs, key=lambda r: (r.start_date_local, r.id))  # the replay's order
    if len(notes) != len(runs) or any(
        n.local_date != r.start_date_local.date() for n, r in zip(notes, runs, strict=True)
    ):
        raise AssertionError(f"{history.name}: the replay's notes do not match its runs")
    return Replayed(history, runs, notes, seconds)


def body_line(text: str) -> str:
    """A note's body: its lines after the headline, without the "Why:" line."""
    lines = [line for line in text.splitlines()[1:] if not line.startswith("Why: ")]
    return " ".join(lines) or text


def wording_key(note: PreviewNote) -> str:
    """What the note says, as one key: its tip, else its rule's wording, else its body."""
    return note.tip_id or note.wording_id or body_line(note.text)


def longest_same_wording(notes: Sequence[PreviewNote]) -> tuple[int, int]:
    """(length, start index) of the longest run of consecutive notes with one wording key."""
    best, best_start, length = 0, 0, 0
    for i, note in enumerate(notes):
        length = length + 1 if i and wording_key(note) == wording_key(notes[i - 1]) else 1
        if length > best:
            best, best_start = length, i - length + 1
    return best, best_start


# -- the export and the command line -------------------------------------------------------------

HEADER = [
    "Activity ID", "Activity Date", "Activity Name", "Activity Type", "Activity Description",
    "Elapsed Time", "Distance", "Max Heart Rate", "Relative Effort", "Commute",
    "Activity Private Note", "Activity Gear", "Filename", "Athlete Weight", "Bike Weight",
    "Elapsed Time", "Moving Time", "Distance", "Max Speed", "Average Speed", "Elevation Gain",
    "Workout Type",
]  # fmt: skip
NAMES = {WORKOUT_RACE: "Race", WORKOUT_LONG_RUN: "Long Run", WORKOUT_WORKOUT: "Workout"}


def render_export(history: History) -> str:
    """A Strava-like activities.csv: English dates in UTC, distance in km and then in metres."""
    tz = ZoneInfo(history.tz)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for run in history.runs:
        start = run.start_date_local.replace(tzinfo=tz).astimezone(dt.UTC)
        seconds = run.moving_time_s
        name = NAMES.get(run.workout_type or 0, "Morning Run")
        writer.writerow([
            run.id, start.strftime("%b %-d, %Y, %-I:%M:%S %p"), name, run.sport_type, "",
            seconds, f"{run.distance_m / 1000:.2f}", "", "", "false", "", "", "", "", "",
            f"{seconds}.0", f"{seconds}.0", f"{run.distance_m:.1f}", "",
            f"{run.distance_m / max(seconds, 1):.3f}", "", run.workout_type or "",
        ])  # fmt: skip
    return buf.getvalue()


def write_export(history: History, path: Path) -> None:
    """Write the history as a Strava-like activities.csv at `path`."""
    path.write_text(render_export(history), encoding="utf-8")


def command_line(history: History, path: Path) -> str:
    """The `strava-massage preview` command that replays the exported history."""
    args = ["strava-massage", "preview", str(path), "--tz", history.tz, "--units", history.units]
    for race in history.races:
        km = f":{race.distance_m / 1000:g}" if race.distance_m else ""
        args += ["--race", f"{race.on.isoformat()}{km}"]
    for day in history.massages:
        args += ["--massage", day.isoformat()]
    return shlex.join(args)


def main(argv: Sequence[str] | None = None) -> None:
    """Write each history's CSV into DIR and print the command line that replays it."""
    parser = argparse.ArgumentParser(prog="python -m tests.advice.histories", description=__doc__)
    parser.add_argument("dir", type=Path, help="where to write <name>.csv")
    out: Path = parser.parse_args(argv).dir
    out.mkdir(parents=True, exist_ok=True)
    for history in HISTORIES:
        path = out / f"{history.name}.csv"
        write_export(history, path)
        print(f"# {history.name}: {history.description}")
        print(command_line(history, path))


if __name__ == "__main__":
    main()
