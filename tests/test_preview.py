"""`strava-massage preview`: a Strava export replayed through the rules, from the command line."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strava_massage.advice import KINDS
from strava_massage.cli import cli
from strava_massage.services.preview import (
    KIND_LABELS,
    BadRow,
    Export,
    ExportError,
    PreviewNote,
    Race,
    format_preview,
    parse_activities,
    parse_race,
    read_export,
    replay,
    workout_type,
)

from .data import make_export as plan

ROOT = Path(__file__).resolve().parents[1]
EXPORT = plan.HERE / "activities.csv"
README_ARGS = [
    str(Path("tests/data/activities.csv")), "--tz", "Europe/London", "--race", "2025-09-07:42.2",
    "--massage", "2025-06-10", "--massage", "2025-07-15", "--massage", "2025-09-09",
]  # fmt: skip
JSON_KEYS = ["date", "distance_km", "kind", "suggests_session", "note"]
# A small export with Strava's Workout Type column, for rows written by the tests.
SMALL_HEADER = ["Activity ID", "Activity Date", "Activity Type", "Distance", "Moving Time",
                "Workout Type"]  # fmt: skip


def preview(*args: str) -> Result:
    """Run the command through its click entry point (the subprocess test covers the rest)."""
    return CliRunner().invoke(cli, ["preview", *args], catch_exceptions=False)


def small_export(rows: list[list[str]]) -> str:
    """CSV text of SMALL_HEADER and `rows` (distance in km: the export's single column)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SMALL_HEADER)
    writer.writerows(rows)
    return buf.getvalue()


def export_row(activity_id: str, date: str, metres: str, seconds: str = "1980") -> str:
    """One run as a line of the shipped export's CSV (Strava's columns and quoting)."""
    cells = [""] * len(plan.HEADER)
    cells[:4] = [activity_id, date, "Morning Run", "Run"]
    cells[15:18] = [seconds, seconds, metres]  # Elapsed Time, Moving Time, Distance (metres)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


def with_lines(tmp_path: Path, changes: dict[int, str], extra: Sequence[str] = ()) -> Path:
    """The shipped export with some lines (1-based) replaced and others appended, as a file."""
    lines = EXPORT.read_text(encoding="utf-8").splitlines()
    for number, text in changes.items():
        lines[number - 1] = text
    path = tmp_path / "activities.csv"
    path.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return path


def json_notes(out: str) -> list[dict[str, object]]:
    """The objects of `--json` output, checking each line is one object with the five keys."""
    objects = [json.loads(line) for line in out.splitlines()]
    assert all(list(o) == JSON_KEYS for o in objects)
    return objects


# -- the report --------------------------------------------------------------------------------


def test_the_readme_shows_the_real_output() -> None:
    """README's example is what a fresh process prints, with no service configuration at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRAVA", "DATABASE", "QUEUE"))}
    result = subprocess.run(
        [sys.executable, "-m", "strava_massage", "preview", *README_ARGS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"strava-massage preview tests/data/activities\.csv[^\n]*\n(.*?)```", readme,
                      re.S)  # fmt: skip
    assert shown, "README has a preview example"
    assert shown.group(1) == result.stdout


def test_the_readme_json_example_is_real() -> None:
    """README's `--json` lines are the real first lines of that output."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"\$ (strava-massage preview [^\n]* --json) \| head -n (\d+)\n(.*?)```",
                      readme, re.S)  # fmt: skip
    assert shown, "README has a --json example"
    args = shown.group(1).split()[2:]
    assert "--json" in args and args.count("--race") == 2
    out = preview(str(ROOT / args[0]), *args[1:]).stdout
    assert shown.group(3) == "".join(out.splitlines(True)[: int(shown.group(2))])


def test_week_lines_and_summary() -> None:
    """The header, a week line, the race's line and the rules' summary."""
    out = preview(*README_ARGS).stdout
    assert out.startswith("72 runs from 2025-05-27 to 2025-09-14 (3 other activities left out)\n")
    assert "week of 2025-06-23  5 run(s)  62.0 km  (28 days: 163.0 km)" in out
    assert re.search(r"Sun 07 Sep\s+42\.2 km  post-race\s+race, 42\.2 km in 3:52:06", out)
    assert out.count("\nweek of ") == 16
    assert re.search(r"\nnotes by rule: post-race 1, pre-race 1, .*tip \d+\n", out)
    assert re.search(r"session suggestions: \d+ of 72 notes\n$", out)


def test_the_whole_export_zip_reads_like_its_csv(tmp_path: Path) -> None:
    """The export zip gives the same runs and report as the activities.csv inside it."""
    archive = tmp_path / "export_12345.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("profile.csv", "Athlete ID\n1\n")
        z.writestr("activities/123.gpx", "<gpx/>")
        z.write(EXPORT, "activities.csv")
    assert read_export(archive, plan.TZ) == read_export(EXPORT, plan.TZ)
    assert preview(str(archive)).stdout == preview(str(EXPORT)).stdout


def test_miles_and_full_text() -> None:
    """--units mi prints miles only, and --full each note's lines under its run."""
    out = preview(str(EXPORT), "--units", "mi", "--full").stdout
    assert "week of 2025-06-23  5 run(s)  38.5 mi" in out
    assert " km" not in out
    assert "\n      Why: " in out  # the note's own lines, indented under each run


def test_runs_are_dated_in_the_runners_time_zone() -> None:
    """UTC start times are moved to the runner's zone, which can change the day."""
    header = ",".join(plan.HEADER)
    # 23:30 UTC on Sunday 29 June is 00:30 on Monday in London.
    row = '1,"Jun 29, 2025, 11:30:00 PM",Late run,Run,,1800,5.00,,,,,,,,,1800.0,1800.0,5000.0,,,'
    utc = parse_activities(f"{header}\n{row}\n")
    london = parse_activities(f"{header}\n{row}\n", ZoneInfo("Europe/London"))
    assert utc.runs[0].start_date_local.date() == dt.date(2025, 6, 29)
    assert london.runs[0].start_date_local == dt.datetime(2025, 6, 30, 0, 30)
    assert london.runs[0].distance_m == 5000.0 and london.runs[0].moving_time_s == 1800


def test_a_lone_distance_column_of_large_numbers_is_in_metres() -> None:
    """One Distance column with no unit: a median run over 100 is metres ("1,002.50": 1 km)."""
    text = (
        "Activity ID,Activity Date,Activity Type,Distance\n"
        '7,"Jan 2, 2024, 8:00:00 AM",Run,"1,002.50"\n'
        '8,"Jan 3, 2024, 8:00:00 AM",Run,8020\n'
    )
    assert [r.distance_m for r in parse_activities(text).runs] == [1002.5, 8020.0]


# -- --json ------------------------------------------------------------------------------------


def test_json_is_one_object_per_note_with_the_documented_keys() -> None:
    """--json prints JSON Lines: date, distance_km, kind, suggests_session, note; nothing else."""
    result = preview(*README_ARGS, "--json")
    assert result.exit_code == 0 and result.stderr == ""
    objects = json_notes(result.stdout)
    notes = replay(
        read_export(EXPORT, plan.TZ).runs,
        massages=plan.MASSAGE_DAYS,
        races=[Race(plan.RACE_DAY, 42_200.0)],
    )
    assert objects == [
        {
            "date": n.local_date.isoformat(),
            "distance_km": round(n.distance_m / 1000, 2),
            "kind": n.kind,
            "suggests_session": n.is_session,
            "note": n.text,
        }
        for n in notes
    ]
    race = next(o for o in objects if o["date"] == "2025-09-07")
    assert race["kind"] == "post_race" and race["suggests_session"] is True
    assert race["distance_km"] == 42.2 and "\n" in str(race["note"])


def test_json_rounds_the_distance_to_two_decimals(tmp_path: Path) -> None:
    """distance_km has at most two decimals."""
    path = tmp_path / "activities.csv"
    path.write_text(small_export([["5", "2025-06-01 07:00:00", "Run", "10.12345", "3000", ""]]))
    (obj,) = json_notes(preview(str(path), "--json").stdout)
    assert obj["distance_km"] == 10.12 and obj["date"] == "2025-06-01"


def test_json_sends_skipped_rows_to_stderr(tmp_path: Path) -> None:
    """With --json, stdout is only notes; every skipped row is told on stderr."""
    bad_rows = [export_row(str(n), "yesterday", "5000.0") for n in range(1, 13)]
    path = with_lines(tmp_path, {}, bad_rows)
    result = preview(str(path), "--json")
    assert result.exit_code == 0
    assert len(json_notes(result.stdout)) == 72
    assert result.stderr.splitlines()[0] == "warning: 12 unreadable row(s) skipped:"
    assert "  line 77: unreadable date 'yesterday'" in result.stderr.splitlines()
    assert "  line 88: unreadable date 'yesterday'" in result.stderr.splitlines()


# -- Workout Type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1", 1), ("1.0", 1), (" 2 ", 2), ("3", 3), ("0", 0),
        ("Race", 1), ("race", 1), ("Long Run", 2), ("LONG  run", 2), ("Workout", 3),
        ("Default", None), ("", None),
    ],
)  # fmt: skip
def test_workout_type_as_a_number_or_strava_label(cell: str, expected: int | None) -> None:
    """Workout Type reads as Strava's number or its label, case-insensitively."""
    assert workout_type(cell) == expected
    text = small_export([["5", "2025-06-01 07:00:00", "Run", "10", "3000", cell]])
    assert parse_activities(text).runs[0].workout_type == expected


@pytest.mark.parametrize("cell", ["Fast", "7", "1.5", "-1", "nan", "Long-Run"])
def test_an_unknown_workout_type_is_a_bad_row(cell: str) -> None:
    """A Workout Type Strava does not use skips the row with that reason, not a crash."""
    text = small_export([
        ["5", "2025-06-01 07:00:00", "Run", "10", "3000", cell],
        ["6", "2025-06-02 07:00:00", "Run", "8", "2400", "Race"],
    ])  # fmt: skip
    export = parse_activities(text)
    assert [r.id for r in export.runs] == [6]
    assert export.unreadable_rows == [BadRow(2, f"Workout Type {cell!r} is not one Strava uses")]


def test_a_race_labelled_in_the_export_is_the_race(tmp_path: Path) -> None:
    """A run whose Workout Type is "Race" gets the post-race note with no --race given."""
    rows = [[str(n), f"2025-05-{n:02d} 07:00:00", "Run", "8", "2640", ""] for n in range(1, 28, 2)]
    rows.append(["99", "2025-05-31 07:00:00", "Run", "21.1", "6600", "Race"])
    path = tmp_path / "activities.csv"
    path.write_text(small_export(rows))
    objects = json_notes(preview(str(path), "--json").stdout)
    assert objects[-1]["kind"] == "post_race" and objects[-1]["date"] == "2025-05-31"


# -- bad rows ----------------------------------------------------------------------------------


def test_malformed_rows_are_each_reported_and_the_rest_kept(tmp_path: Path) -> None:
    """Each bad row is skipped with its line number and reason; the other runs are replayed."""
    line4 = EXPORT.read_text().splitlines()[3]
    path = with_lines(
        tmp_path,
        {4: line4.replace('"May 31, 2025, 6:00:00 AM"', "yesterday")},
        [
            export_row("x1", "Sep 15, 2025, 6:00:00 AM", "6000.0"),
            export_row("9100000002", "Sep 15, 2025, 6:00:00 AM", "-5"),
            export_row("9100000003", "Sep 15, 2025, 6:00:00 AM", "6000.0", "soon"),
            export_row("9000000001", "Sep 16, 2025, 6:00:00 AM", "6000.0"),
            export_row("9100000005", "Jan 1, 0001, 12:00:00 AM", "6000.0"),
            export_row("9100000006", "Sep 17, 2025, 6:00:00 AM", "inf", "60"),
            '9100000007,"Sep 17, 2025, 6:00:00 AM",Morning Run,Run',  # cut short
            '9100000008,"Sep 18, 2025, 6:00:00 AM",Morning Run,Run,"a quote left open',
        ],
    )
    export = read_export(path, plan.TZ)
    assert [str(bad) for bad in export.unreadable_rows] == [
        "line 4: unreadable date 'yesterday'",
        "line 77: activity ID 'x1' is not an ID",
        "line 78: distance '-5' is not a distance",
        "line 79: time 'soon' is not a number of seconds",
        "line 80: activity ID 9000000001 repeats line 2",
        "line 81: date 'Jan 1, 0001, 12:00:00 AM' is out of range (1900-2100)",
        "line 82: distance 'inf' is not a distance",
        "line 83: distance '' is not a distance",
        "line 84: distance '' is not a distance",
    ]
    result = preview(str(path), "--tz", "Europe/London")
    assert result.exit_code == 0
    assert result.stdout.startswith("71 runs")
    assert "warning: 9 unreadable row(s) skipped:\n  line 4: unreadable date 'yesterday'\n" in (
        result.stdout
    )


def test_the_report_lists_ten_skipped_rows_and_counts_the_rest(tmp_path: Path) -> None:
    """The text report shows at most ten skipped rows, then how many more there are."""
    bad_rows = [export_row(str(n), "Jun 1, 2025, 6:00:00 AM", "far") for n in range(1, 15)]
    out = preview(str(with_lines(tmp_path, {}, bad_rows))).stdout
    assert "warning: 14 unreadable row(s) skipped:\n" in out
    assert "  line 86: distance 'far' is not a distance\n  ... and 4 more\n" in out
    assert "line 87" not in out


def test_a_long_cell_is_cut_short_in_the_reason() -> None:
    """A huge or multi-line cell is quoted briefly on one line."""
    text = small_export([["5", "a\nvery " + "long " * 50 + "date", "Run", "10", "3000", ""]])
    (bad,) = parse_activities(text).unreadable_rows
    assert bad.line == 2 and "\n" not in str(bad) and len(str(bad)) < 80


def test_rows_spanning_lines_are_numbered_from_where_they_start() -> None:
    """A description over several lines does not shift the line numbers after it."""
    header = ",".join(plan.HEADER)
    ok = '1,"Jun 29, 2025, 6:00:00 AM",Run,Run,"two\nlines",60,5.00,,,,,,,,,60,60,5000.0,,,'
    bad = '2,"Jun 30, 2025, 6:00:00 AM",Run,Run,,60,5.00,,,,,,,,,60,60,lots,,,'
    (row,) = parse_activities(f"{header}\n{ok}\n\n{bad}\n").unreadable_rows
    assert row == BadRow(5, "distance 'lots' is not a distance")


CELL = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "Run", "Ride", "1", "1.0", "Race", "-5", "1e400", "nan", "10,5", '"']),
)
ROW = st.one_of(
    st.fixed_dictionaries({
        "id": st.one_of(CELL, st.integers(-5, 2**64).map(str)),
        "date": st.one_of(CELL, st.datetimes().map(lambda d: f"{d:%b %d, %Y, %I:%M:%S %p}")),
        "type": st.one_of(CELL, st.just("Run")),
        "distance": st.one_of(CELL, st.floats().map(str)),
        "moving": st.one_of(CELL, st.floats().map(str)),
        "workout": CELL,
    }).map(lambda cells: list(cells.values())),
    st.text(max_size=60).map(lambda raw: [raw]),  # a line of anything, commas and quotes too
)  # fmt: skip


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, max_size=6))
def test_no_csv_content_makes_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]]
) -> None:
    """Random cells and lines give notes and skipped-row warnings, never an exception."""
    path = tmp_path_factory.getbasetemp() / "random-activities.csv"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SMALL_HEADER)
    for row in rows:
        if len(row) == 1:
            buf.write(row[0] + "\n")
        else:
            writer.writerow(row)
    path.write_text(buf.getvalue(), encoding="utf-8")
    result = preview(str(path), "--json", "--tz", "Pacific/Kiritimati")
    if result.exit_code == 2:  # no run could be read: one line saying where and why
        assert result.stdout == ""
        assert re.fullmatch(r"Error: random-activities\.csv line \d+: .*\n", result.stderr)
        return
    assert result.exit_code == 0, result.output
    json_notes(result.stdout)
    assert all(re.fullmatch(r"warning: .*|  line \d+: .*", x) for x in result.stderr.splitlines())


# -- races -------------------------------------------------------------------------------------


def test_race_values_read_as_date_and_optional_km() -> None:
    """`--race DATE[:KM]` gives a Race with its distance in metres."""
    assert parse_race("2025-06-01") == Race(dt.date(2025, 6, 1))
    assert parse_race("2025-06-01:21.1") == Race(dt.date(2025, 6, 1), 21_100.0)
    assert parse_race(" 2025-09-07 : 42.2 ") == Race(dt.date(2025, 9, 7), 42_200.0)


def test_each_run_sees_the_next_race_on_or_after_its_day() -> None:
    """With two races, each run's next race is the first one not yet past."""
    runs = read_export(EXPORT, plan.TZ).runs
    notes = replay(runs, races=[Race(dt.date(2025, 9, 7), 42_200.0), Race(dt.date(2025, 7, 13))])
    pre = [(n.local_date.isoformat(), n.reason) for n in notes if n.kind == "pre_race"]
    assert pre == [
        ("2025-07-06", "your race on 13 Jul is 7 days away"),
        ("2025-08-31", "your race on 07 Sep is 7 days away"),
    ]
    races = [n.local_date.isoformat() for n in notes if n.kind == "post_race"]
    assert races == ["2025-07-13", "2025-09-07"]


def test_repeatable_race_option_through_the_cli() -> None:
    """`--race` repeats on the command line, each with or without a distance."""
    result = preview(str(EXPORT), "--tz", "Europe/London", "--json",
                     "--race", "2025-07-13:21.1", "--race", "2025-09-07:42.2")  # fmt: skip
    kinds = {(o["date"], o["kind"]) for o in json_notes(result.stdout)}
    assert {("2025-07-13", "post_race"), ("2025-09-07", "post_race")} <= kinds


def test_the_race_distance_decides_which_run_of_the_day_is_the_race(tmp_path: Path) -> None:
    """A warm-up before the race is not the race when the race's distance is given."""
    warm_up = export_row("9100000001", "Sep 7, 2025, 5:30:00 AM", "2000.0", "600")
    path = with_lines(tmp_path, {}, [warm_up])
    objects = json_notes(preview(str(path), "--tz", "Europe/London", "--json",
                                 "--race", "2025-09-07:42.2").stdout)  # fmt: skip
    race_day = [(o["distance_km"], o["kind"]) for o in objects if o["date"] == "2025-09-07"]
    assert race_day[0] == (2.0, "recovery_tip") and race_day[1] == (42.2, "post_race")


def test_no_run_is_retagged_as_a_race() -> None:
    """The replay passes the export's runs as they are; the advice finds the race on its date."""
    runs = read_export(EXPORT, plan.TZ).runs
    assert all(r.workout_type is None for r in runs)
    short = replay(runs, races=[Race(plan.RACE_DAY, 100_000.0)])
    on_the_day = [n.kind for n in short if n.local_date == plan.RACE_DAY]
    assert on_the_day != ["post_race"]  # 42.2 km is not a 100 km race: the old retag made it one
    marathon = replay(runs, races=[Race(plan.RACE_DAY, 42_200.0)])
    assert [n.kind for n in marathon if n.local_date == plan.RACE_DAY] == ["post_race"]


# -- what each note carries, and the summary ---------------------------------------------------


def test_session_notes_carry_their_wording() -> None:
    """PreviewNote.wording_id is the wording the note's session rule used; tips have none."""
    notes = replay(read_export(EXPORT, plan.TZ).runs, races=[Race(plan.RACE_DAY, 42_200.0)])
    sessions = [n for n in notes if n.is_session]
    assert sessions and all(n.wording_id and n.wording_id.startswith(n.kind) for n in sessions)
    assert all(n.wording_id is None for n in notes if n.kind == "recovery_tip")


def test_every_kind_has_a_label_and_a_new_kind_is_counted() -> None:
    """The summary labels the engine's kinds, comeback included, and counts an unknown kind too."""
    assert list(KIND_LABELS) == list(KINDS)
    assert KIND_LABELS["comeback"] == "comeback" and KIND_LABELS["recovery_tip"] == "tip"
    assert KIND_LABELS["load_spike"] == "load spike" and KIND_LABELS["post_race"] == "post-race"
    day = dt.date(2025, 6, 2)
    notes = [
        PreviewNote(day, 5000.0, kind, "why", "text", None, None, False)
        for kind in ("recovery_tip", "comeback", "comeback", "ankle_check")
    ]
    out = list(format_preview(Export(runs=[]), notes))
    assert "  Mon 02 Jun     5.0 km  comeback     why" in out
    assert "  Mon 02 Jun     5.0 km  ankle check  why" in out
    assert out[-2] == "notes by rule: comeback 2, tip 1, ankle check 1"


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "args", "message", "status"),
    [
        (b"name,value\na,1\n", [], "does not look like Strava's activities.csv", 1),
        (b"", [], "the file is empty", 1),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", [], "neither a CSV file nor a zip archive", 1),
        (None, ["--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'", 1),
        (None, ["--race", "next sunday"], "--race must be a date like", 2),
        (None, ["--race", "2025-09-07:far"], "--race distance must be in km", 2),
        (None, ["--race", "2025-09-07:0"], "--race distance must be in km", 2),
        (None, ["--race", "2025-09-07:500"], "--race distance must be in km", 2),
        (None, ["--race", "2025-09-07:nan"], "--race distance must be in km", 2),
        (None, ["--massage", "June"], "--massage must be a date like", 2),
        (None, ["--units", "furlongs"], "Invalid value for '--units'", 2),
    ],
    ids=["not an export", "empty", "binary", "bad zone", "bad race date",
         "bad race km", "zero km", "too far", "nan km", "bad massage", "bad units"],
)  # fmt: skip
def test_bad_input_is_one_clear_line(
    tmp_path: Path, content: bytes | None, args: list[str], message: str, status: int
) -> None:
    """A bad file or option value is one error line and a status, never a traceback."""
    path = EXPORT
    if content is not None:
        path = tmp_path / "activities.csv"
        path.write_bytes(content)
    result = preview(str(path), *args)
    assert result.exit_code == status
    assert message in result.stderr
    if status == 1 or "--race" in args or "--massage" in args:
        assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_a_zip_without_activities_is_refused(tmp_path: Path) -> None:
    """A zip with no activities.csv is refused with a message saying so."""
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("photo.txt", "hello")
    with pytest.raises(ExportError, match=r"holds no activities\.csv"):
        read_export(archive)
    result = preview(str(archive))
    assert result.exit_code == 1 and "holds no activities.csv" in result.stderr


def test_a_damaged_zip_is_one_clear_line(tmp_path: Path) -> None:
    """A zip whose activities.csv is corrupt is refused with one line, not a traceback."""
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(EXPORT, "activities.csv")
    data = bytearray(archive.read_bytes())
    data[100:140] = bytes(40)  # inside the compressed member
    archive.write_bytes(bytes(data))
    result = preview(str(archive))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: export.zip cannot be read")


def test_a_missing_file_is_a_usage_error() -> None:
    """A path that does not exist is Click's usage error (status 2)."""
    result = preview("no/such/activities.csv")
    assert result.exit_code == 2 and "does not exist" in result.stderr


# -- every shape of export -----------------------------------------------------------------------

DATA = plan.HERE
RUN_A = (dt.datetime(2026, 12, 3, 7, 5, 12), 8020.0, 2400)  # (UTC start, metres, seconds)
RUN_B = (dt.datetime(2026, 12, 5, 8, 30), 16090.0, 5400)


@pytest.mark.parametrize(
    ("name", "runs", "units"),
    [
        # 2018: lower-case short headers, ISO dates, one distance column in metres.
        ("export-2018.csv", [RUN_A, RUN_B], None),
        # 2019: one Distance column in km, US dates, Elapsed Time only.
        ("export-2019.csv", [RUN_A, RUN_B], None),
        # Today's: Distance twice (km, then metres), Elapsed Time twice, a "Type" of its own.
        ("export-en-us.csv", [RUN_A, RUN_B], "km"),
        # An imperial account: the first Distance column is in miles.
        ("export-imperial.csv", [RUN_A, (RUN_B[0], 16093.4, 5400)], "mi"),
        ("export-en-gb.csv", [RUN_A, RUN_B], "km"),
        # German headers, "03.12.2026, 07:05:12", "Lauf", a decimal comma in the km column.
        ("export-de.csv", [RUN_A, RUN_B], "km"),
        # French month names ("3 déc. 2026 à 07:05:12") and a decimal comma in a lone column.
        ("export-fr.csv", [RUN_A, RUN_B], None),
        # Spanish month names, decimal commas in the metres and seconds columns too.
        ("export-es.csv", [RUN_A, RUN_B], "km"),
        # Only Date, Type, Distance.
        ("export-minimal.csv", [(RUN_A[0], 8020.0, 0), (RUN_B[0], 16090.0, 0)], None),
        # Saved again from a spreadsheet: day-first 03/12/2026 (13/12 shows it), clock times.
        ("export-spreadsheet.csv", [
            (dt.datetime(2026, 12, 3, 7, 5), 8020.0, 2400),
            (RUN_B[0], 16090.0, 5400),
            (dt.datetime(2026, 12, 13, 8, 30), 10_000.0, 3300),
        ], None),
    ],
)  # fmt: skip
def test_each_shape_of_export_reads_the_same_runs(
    name: str, runs: list[tuple[dt.datetime, float, int]], units: str | None
) -> None:
    """Dates, distances in metres and times come out right in every shape; rides stay out."""
    export = read_export(DATA / name)
    assert export.unreadable_rows == []
    assert [(r.start_date_local, r.moving_time_s) for r in export.runs] == [
        (when, seconds) for when, _, seconds in runs
    ]
    assert [r.distance_m for r in export.runs] == pytest.approx([m for _, m, _ in runs])
    assert {r.sport_type for r in export.runs} == {"Run"}
    assert export.other_activities == 1 and export.units == units
    result = preview(str(DATA / name))
    assert result.exit_code == 0 and result.stderr == ""
    first, last = runs[0][0].date(), runs[-1][0].date()
    plural = "runs" if len(runs) > 1 else "run"
    expected = f"{len(runs)} {plural} from {first} to {last} (1 other activity left out)\n"
    assert result.stdout.startswith(expected)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Dec 3, 2026, 7:05:12 AM", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("Dec 3, 2026, 7:05:12 PM", dt.datetime(2026, 12, 3, 19, 5, 12)),
        ("Dec 3, 2026, 12:05:12 AM", dt.datetime(2026, 12, 3, 0, 5, 12)),
        ("3 Dec 2026, 07:05:12", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("03.12.2026, 07:05:12", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("2026-12-03 07:05:12", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("2026-12-03T07:05:12Z", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("2026-12-03T08:05:12+01:00", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("3. Dez. 2026, 07:05:12", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("14. März 2026, 07:05:12", dt.datetime(2026, 3, 14, 7, 5, 12)),
        ("3 déc. 2026, 07:05:12", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("24 mai 2012 à 16:27:40", dt.datetime(2012, 5, 24, 16, 27, 40)),
        ("3 dic 2026, 7:05:12", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("3 de sept. de 2026, 7:05:12", dt.datetime(2026, 9, 3, 7, 5, 12)),
        ("2026/12/03 07:05:12", dt.datetime(2026, 12, 3, 7, 5, 12)),
        ("03.12.2026 07:05", dt.datetime(2026, 12, 3, 7, 5)),
    ],
)
def test_dates_in_the_exports_languages(cell: str, expected: dt.datetime) -> None:
    """Each language's way of writing the date reads as the same moment (UTC)."""
    (run,) = parse_activities(f'Date,Type,Distance\n"{cell}",Run,8.02\n').runs
    assert run.start_date_local == expected


def test_a_date_without_a_time_is_the_local_day() -> None:
    """ "2026-12-03" stays 3 December in any zone (there is no time of day to move)."""
    (run,) = parse_activities(
        "Date,Type,Distance\n2026-12-03,Run,8\n", ZoneInfo("Pacific/Honolulu")
    ).runs
    assert run.start_date_local == dt.datetime(2026, 12, 3)


@pytest.mark.parametrize(
    ("header", "cells", "metres"),
    [
        ("Distance,Distance", ["8.02,8020.0", "16.09,16090.0"], [8020.0, 16090.0]),
        ("Distance,Distance", ['"8,02",8020.0', '"16,09",16090.0'], [8020.0, 16090.0]),
        ("Distance", ["8.02", "16.09"], [8020.0, 16090.0]),  # km, by its size
        ("Distance", ["8020", "16090"], [8020.0, 16090.0]),  # metres, by its size
        ("Distance", ['"8,02"', '"16,09"'], [8020.0, 16090.0]),  # a decimal comma
        ("Distance", ['"8.020,5"', '"16 090,5"'], [8020.5, 16090.5]),  # and thousands
        # "1,002" could be either: a thousand and two, as metres here (by its size) show.
        ("Distance", ['"1,002"', '"5,000"', "8020"], [1002.0, 5000.0, 8020.0]),
        ("Distance (m)", ["80", "95"], [80.0, 95.0]),  # the header's unit wins over size
        ("Distance (km)", ["150", "160"], [150_000.0, 160_000.0]),
        ("Distance (mi)", ["5", "10"], [8046.72, 16093.44]),
    ],
)
def test_distance_columns_of_each_kind(header: str, cells: list[str], metres: list[float]) -> None:
    """One or two Distance columns, km or m, a decimal point or comma: metres each time."""
    lines = [f"Date,Type,{header}"] + [f"2026-12-0{n + 1},Run,{c}" for n, c in enumerate(cells)]
    export = parse_activities("\n".join(lines) + "\n")
    assert export.unreadable_rows == []
    assert [r.distance_m for r in export.runs] == [pytest.approx(m) for m in metres]


def test_a_decimal_comma_among_decimal_points_is_refused_not_multiplied() -> None:
    """ "8,02" in a column that writes "8.02" is a bad row, never 802 km."""
    text = 'Date,Type,Distance\n2026-12-01,Run,8.02\n2026-12-02,Run,10.50\n2026-12-03,Run,"8,02"\n'
    export = parse_activities(text)
    assert [r.distance_m for r in export.runs] == [pytest.approx(8020.0), 10_500.0]
    assert export.unreadable_rows == [BadRow(4, "distance '8,02' is not a distance")]


def test_slash_dates_take_their_order_from_the_column() -> None:
    """04/05/2026 is 4 May where another row has 13/05/2026, and 5 April beside 05/13/2026."""
    day_first = parse_activities("Date,Type,Distance\n04/05/2026,Run,8\n13/05/2026,Run,8\n")
    month_first = parse_activities("Date,Type,Distance\n04/05/2026,Run,8\n05/13/2026,Run,8\n")
    assert day_first.runs[0].start_date_local == dt.datetime(2026, 5, 4)
    assert month_first.runs[0].start_date_local == dt.datetime(2026, 4, 5)
    alone = parse_activities("Date,Type,Distance\n04/05/2026,Run,8\n")
    assert [str(b) for b in alone.unreadable_rows] == [
        "line 2: date '04/05/2026' could be day/month or month/day, and no other row shows which"
    ]


# -- what cannot be read is refused ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_row", "reason"),
    [
        ("32/13/2026,Run,8.02", "unreadable date '32/13/2026'"),
        ("tomorrow,Run,8.02", "unreadable date 'tomorrow'"),
        ("2026-12-03,Run,8..02", "distance '8..02' is not a distance"),
        ("2026-12-03,Run,far", "distance 'far' is not a distance"),
    ],
)
def test_an_export_with_no_readable_run_is_refused_with_the_line(
    tmp_path: Path, run_row: str, reason: str
) -> None:
    """Nothing readable is exit 2 and one line naming the file, the line and why, never an
    empty preview with exit 0."""
    path = tmp_path / "activities.csv"
    path.write_text(f"Date,Type,Distance\n2026-12-01,Ride,20\n{run_row}\n", encoding="utf-8")
    for args in ([], ["--json"]):
        result = preview(str(path), *args)
        assert result.exit_code == 2 and result.stdout == ""
        assert (
            result.stderr == f"Error: activities.csv line 3: {reason}; no run in it could be read\n"
        )


def test_the_refusal_counts_the_other_unreadable_rows(tmp_path: Path) -> None:
    """With several bad rows, the first is named and the rest counted."""
    path = tmp_path / "activities.csv"
    path.write_text("Date,Type,Distance\nsoon,Run,8\nlater,Run,8\nnever,Run,8\n")
    result = preview(str(path))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: activities.csv line 2: unreadable date 'soon' (2 more rows too);"
        " no run in it could be read\n"
    )


def test_an_export_of_other_sports_only_says_what_it_holds(tmp_path: Path) -> None:
    """No runs and nothing unreadable: exit 0, and which activities were there instead."""
    path = tmp_path / "activities.csv"
    path.write_text(
        "Date,Type,Distance\n2026-12-01,Ride,20\n2026-12-02,Ride,30\n2026-12-03,Swim,2\n"
    )
    result = preview(str(path))
    assert result.exit_code == 0
    assert result.stdout == (
        "No runs found in the export, so there is nothing to preview.\n"
        "It holds 3 other activities: Ride 2, Swim 1.\n"
    )


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["2026-12-05:-5", "2026-12-05:401", "2026-12-05:1e400", "2026-12-05:x"]
)
def test_race_distance_is_range_checked(value: str) -> None:
    """--race KM must be more than 0 and at most 400: exit 2 with one line."""
    result = preview(str(DATA / "export-en-us.csv"), "--race", value)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: --race distance must be in km, more than 0")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("race", ["2026-12-05", "2026-12-05:16.09"])
def test_race_takes_date_or_date_and_km_as_runner_set_does(race: str) -> None:
    """`--race DATE` and `--race DATE:KM` (the form `runner set --race` takes) both work."""
    result = preview(str(DATA / "export-en-us.csv"), "--race", race, "--json")
    assert result.exit_code == 0
    kinds = [(o["date"], o["kind"]) for o in json_notes(result.stdout)]
    assert kinds[-1] == ("2026-12-05", "post_race")


def test_one_run_and_one_other_activity_are_singular(tmp_path: Path) -> None:
    """ "1 run ... (1 other activity left out)", not "1 runs", "1 other activities"."""
    path = tmp_path / "activities.csv"
    path.write_text("Date,Type,Distance\n2026-12-01 07:00:00,Ride,20\n2026-12-03 07:00:00,Run,8\n")
    out = preview(str(path)).stdout
    assert out.startswith("1 run from 2026-12-03 to 2026-12-03 (1 other activity left out)\n")


def test_the_report_is_in_the_exports_units_unless_told() -> None:
    """An imperial export reports in miles throughout; --units km turns all of it to km."""
    miles = preview(str(DATA / "export-imperial.csv"), "--full").stdout
    assert "week of 2026-11-30  2 run(s)  15.0 mi  (28 days: 15.0 mi)" in miles
    assert " km" not in miles and "Why: 5.0 mi today" in miles
    km = preview(str(DATA / "export-imperial.csv"), "--full", "--units", "km").stdout
    assert "24.1 km  (28 days: 24.1 km)" in km and " mi" not in km
    assert " mi" not in preview(str(DATA / "export-de.csv"), "--full").stdout
