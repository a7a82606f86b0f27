"""The generated histories are what their descriptions say, and their exports read back as-is."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from strava_massage.services.preview import read_export, zone

from .histories import (
    BY_NAME,
    HISTORIES,
    METRES_PER_MILE,
    WORKOUT_LONG_RUN,
    WORKOUT_RACE,
    command_line,
    render_export,
    week_totals,
    write_export,
)

ROOT = Path(__file__).resolve().parents[2]
ALL = [h.name for h in HISTORIES]


def weekly(name: str) -> list[float]:
    """The history's week totals in its own units, one decimal."""
    h = BY_NAME[name]
    unit = METRES_PER_MILE if h.units == "mi" else 1000.0
    return [round(m / unit, 1) for m in week_totals(h.runs).values()]


@pytest.mark.parametrize("name", ALL)
def test_runs_are_a_runners_in_order(name: str) -> None:
    """Runs of athlete 1, oldest first, with unique ids, ending in 2025 or 2026."""
    h = BY_NAME[name]
    assert {(r.athlete_id, r.sport_type) for r in h.runs} == {(1, "Run")}
    assert h.runs == sorted(h.runs, key=lambda r: (r.start_date_local, r.id))
    assert len({r.id for r in h.runs}) == len(h.runs)
    assert h.runs[-1].start_date_local.year in (2025, 2026)
    assert all(r.start_date_local.tzinfo is None for r in h.runs)


def test_the_generator_is_deterministic() -> None:
    """Generating again gives the same runs (each history has its own seeded Random)."""
    code = (
        "import hashlib; from tests.advice.histories import HISTORIES as H; "
        "print(hashlib.sha256(repr([h.runs for h in H]).encode()).hexdigest())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }  # fmt: skip
    assert len(outs) == 1


def test_only_the_beginner_jumps() -> None:
    """The one week over 1.3x the week before is the beginner's 12.9 -> 21.3 km."""
    assert {h.name: len(h.jump_weeks) for h in HISTORIES if h.jump_weeks} == {"beginner": 1}
    week = weekly("beginner")
    assert week[9:11] == [12.9, 21.3]
    assert max(week[:10]) < 15
    assert {len([r for r in BY_NAME["beginner"].runs if r.start_date_local.date() >= d
                 and r.start_date_local.date() < d + dt.timedelta(days=7)])
            for d in week_totals(BY_NAME["beginner"].runs)} == {3}  # fmt: skip


def test_the_marathon_build() -> None:
    """40 to 75 km weeks, long runs 16 to 32 km tagged 2, a half in week 10, the race in week 16."""
    h = BY_NAME["marathon"]
    week = weekly("marathon")
    assert week[0] == 40 and max(week) == 75
    long_runs = [r.distance_m / 1000 for r in h.runs if r.workout_type == WORKOUT_LONG_RUN]
    assert round(long_runs[0]) == 16 and round(max(long_runs)) == 32
    races = [(r.start_date_local.date(), r.distance_m) for r in h.runs
             if r.workout_type == WORKOUT_RACE]  # fmt: skip
    first = h.runs[0].start_date_local.date()
    assert [((d - first).days // 7 + 1, m) for d, m in races] == [(10, 21100), (16, 42200)]
    assert [r.on for r in h.races] == [d for d, _ in races] == h.race_days


def test_the_ten_k_race_is_untagged() -> None:
    """The 10 km is set as a race but not tagged, between a warm-up and a cool-down."""
    h = BY_NAME["ten_k"]
    (race,) = h.races
    that_day = [r for r in h.runs if r.start_date_local.date() == race.on]
    assert [round(r.distance_m) for r in that_day][1] == 10_000 == race.distance_m
    assert len(that_day) == 3 and all(r.workout_type is None for r in that_day)
    assert h.units == "mi" and weekly("ten_k")[0] == 15 and max(weekly("ten_k")) == 28
    assert race.on.weekday() == 5


def test_the_comeback() -> None:
    """About 40 km a week, 16 days off, rebuilding from 25 km never above 40, then 40 again."""
    h = BY_NAME["comeback"]
    assert h.layoff is not None and h.layoff.days_off == 16
    assert round(h.layoff.old_week_m / 1000) == 40
    week = weekly("comeback")
    assert week[10:12] == [0, 0] and week[12:15] == [25, 30, 35]
    assert all(39 <= w <= 41 for w in week[:9] + week[15:])
    assert all(h2.layoff is None for h2 in HISTORIES if h2.name != "comeback")


def test_high_mileage_and_ultra() -> None:
    """90-121 km weeks with doubles; the ultra's back-to-back weekend long runs and its 50 km."""
    week = weekly("high_mileage")
    assert min(week) >= 90 and sorted(week)[-2:] == [120, 121]
    days = [r.start_date_local.date() for r in BY_NAME["high_mileage"].runs]
    assert len(days) > len(set(days))  # doubles
    ultra = BY_NAME["ultra"]
    weekends = {r.start_date_local.weekday() for r in ultra.runs
                if r.workout_type == WORKOUT_LONG_RUN}  # fmt: skip
    assert weekends == {5, 6}
    assert [(r.distance_m, r.workout_type) for r in ultra.runs][-1] == (50_000, WORKOUT_RACE)


@pytest.mark.parametrize("name", ALL)
def test_the_export_reads_back_as_the_history(name: str, tmp_path: Path) -> None:
    """write_export's CSV, read by the preview's own reader, gives back the same runs."""
    h = BY_NAME[name]
    path = tmp_path / f"{name}.csv"
    write_export(h, path)
    runs = read_export(path, zone(h.tz)).runs
    assert runs == h.runs


def test_the_command_line(tmp_path: Path) -> None:
    """The printed command replays the export with the history's races, massages and units."""
    h = BY_NAME["marathon"]
    assert command_line(h, tmp_path / "m.csv") == (
        f"strava-massage preview {tmp_path}/m.csv --tz Europe/London --units km "
        "--race 2025-08-31:21.1 --race 2025-10-12:42.2 "
        "--massage 2025-07-30 --massage 2025-09-03"
    )
    out = subprocess.run(
        [sys.executable, "-m", "tests.advice.histories", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    assert out.count("strava-massage preview ") == len(HISTORIES)
    assert (tmp_path / "ten_k.csv").read_text(encoding="utf-8") == render_export(BY_NAME["ten_k"])
