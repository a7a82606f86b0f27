"""`strava-massage preview`: a Strava export replayed through the rules, from the command line."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from strava_massage.cli import cli
from strava_massage.preview import ExportError, parse_activities, read_export

from .data import make_export as plan

ROOT = Path(__file__).resolve().parents[1]
EXPORT = plan.HERE / "activities.csv"
README_ARGS = [
    str(Path("tests/data/activities.csv")), "--tz", "Europe/London", "--race", "2025-09-07",
    "--massage", "2025-06-10", "--massage", "2025-07-15", "--massage", "2025-09-09",
]  # fmt: skip


def preview(*args: str) -> Result:
    """Run the command through its click entry point (the subprocess test covers the rest)."""
    return CliRunner().invoke(cli, ["preview", *args], catch_exceptions=False)


def test_the_readme_shows_the_real_output() -> None:
    # As a runner would run it: a fresh process, with no service configuration at all.
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


def test_week_lines_and_summary() -> None:
    out = preview(*README_ARGS).stdout
    assert out.startswith("72 runs from 2025-05-27 to 2025-09-14 (3 other activities left out)\n")
    assert "week of 2025-06-23  5 run(s)  62.0 km  (28 days: 163.0 km)" in out
    assert re.search(r"Sun 07 Sep\s+42\.2 km  post-race\s+race, 42\.2 km in 3:52:06", out)
    assert out.count("\nweek of ") == 16
    assert out.rstrip().endswith("session suggestions: 11 of 72 notes")


def test_the_whole_export_zip_reads_like_its_csv(tmp_path: Path) -> None:
    archive = tmp_path / "export_12345.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("profile.csv", "Athlete ID\n1\n")
        z.writestr("activities/123.gpx", "<gpx/>")
        z.write(EXPORT, "activities.csv")
    assert read_export(archive, plan.TZ) == read_export(EXPORT, plan.TZ)
    assert preview(str(archive)).stdout == preview(str(EXPORT)).stdout


def test_miles_and_full_text() -> None:
    out = preview(str(EXPORT), "--units", "mi", "--full").stdout
    assert "week of 2025-06-23  5 run(s)  38.5 mi" in out
    assert " km" not in out
    assert "      Recovery tip" in out  # the note's own lines, indented under each run


def test_runs_are_dated_in_the_runners_time_zone() -> None:
    header = ",".join(plan.HEADER)
    # 23:30 UTC on Sunday 29 June is 00:30 on Monday in London.
    row = '1,"Jun 29, 2025, 11:30:00 PM",Late run,Run,,1800,5.00,,,,,,,,,1800.0,1800.0,5000.0,,,'
    utc = parse_activities(f"{header}\n{row}\n")
    london = parse_activities(f"{header}\n{row}\n", ZoneInfo("Europe/London"))
    assert utc.runs[0].start_date_local.date() == dt.date(2025, 6, 29)
    assert london.runs[0].start_date_local == dt.datetime(2025, 6, 30, 0, 30)
    assert london.runs[0].distance_m == 5000.0 and london.runs[0].moving_time_s == 1800


def test_a_single_distance_column_is_in_km() -> None:
    text = (
        "Activity ID,Activity Date,Activity Type,Distance\n"
        '7,"Jan 2, 2024, 8:00:00 AM",Run,"1,002.50"\n'
    )
    assert parse_activities(text).runs[0].distance_m == 1_002_500.0


def test_unreadable_rows_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    lines = EXPORT.read_text().splitlines()
    lines[3] = lines[3].replace("May 31, 2025", "31/05/2025")
    bad = tmp_path / "activities.csv"
    bad.write_text("\n".join(lines) + "\n")
    result = preview(str(bad))
    assert result.exit_code == 0
    assert "warning: 1 unreadable row(s) skipped (lines 4)" in result.stdout
    assert result.stdout.startswith("71 runs")


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"name,value\na,1\n", [], "does not look like Strava's activities.csv"),
        (b"", [], "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", [], "neither a CSV file nor a zip archive"),
        (None, ["--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (None, ["--race", "next sunday"], "--race"),
        (None, ["--units", "furlongs"], "Invalid value for '--units'"),
    ],
    ids=["not an export", "empty", "binary", "bad zone", "bad race date", "bad units"],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, content: bytes | None, args: list[str], message: str
) -> None:
    path = EXPORT
    if content is not None:
        path = tmp_path / "activities.csv"
        path.write_bytes(content)
    result = preview(str(path), *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert result.stdout == ""


def test_a_zip_without_activities_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("photo.txt", "hello")
    with pytest.raises(ExportError, match=r"holds no activities\.csv"):
        read_export(archive)
    result = preview(str(archive))
    assert result.exit_code == 1 and "holds no activities.csv" in result.stderr


def test_a_missing_file_is_a_usage_error() -> None:
    result = preview("no/such/activities.csv")
    assert result.exit_code == 2 and "does not exist" in result.stderr
