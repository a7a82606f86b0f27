"""Write tests/data/activities.csv: a synthetic 16-week marathon build in Strava's export format.

Run `python -m tests.data.make_export` after changing the plan; a test checks the file matches.
The runner lives in Europe/London and runs at 07:00; the export stores UTC, as Strava's does.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
TZ = ZoneInfo("Europe/London")
FIRST_MONDAY = dt.date(2025, 5, 26)
RACE_DAY = dt.date(2025, 9, 7)  # Sunday of week 15
# Sessions the runner logs: before the build, after the first check-in, after the race.
MASSAGE_DAYS = (dt.date(2025, 6, 10), dt.date(2025, 7, 15), dt.date(2025, 9, 9))

# Kilometres per day, Monday first (0 = rest), for each of the 16 weeks.
PLAN: list[tuple[str, list[float]]] = [
    ("base", [0, 6, 0, 8, 0, 6, 12]),
    ("base", [0, 6, 0, 8, 0, 6, 12]),
    ("base", [0, 7, 0, 8, 0, 6, 13]),
    ("base", [0, 7, 0, 8, 0, 7, 13]),
    ("build", [0, 10, 8, 12, 0, 10, 22]),  # the jump
    ("build", [0, 8, 6, 10, 0, 8, 16]),
    ("build", [0, 8, 6, 10, 0, 8, 18]),
    ("build", [0, 8, 8, 11, 0, 8, 20]),
    ("peak", [0, 12, 10, 14, 0, 14, 22]),  # past 48 km on Saturday
    ("peak", [0, 10, 8, 13, 0, 10, 26]),  # past 48 km with the long run
    ("peak", [0, 12, 10, 14, 0, 14, 28]),
    ("peak", [0, 10, 8, 12, 0, 10, 32]),
    ("taper", [0, 8, 6, 10, 0, 8, 22]),
    ("taper", [0, 8, 0, 10, 0, 6, 16]),
    ("race", [0, 6, 0, 5, 0, 4, 42.2]),
    ("recovery", [0, 0, 5, 0, 6, 0, 8]),
]
# Other sports the runner logs; the preview must leave them out.
RIDES = {2: "Ride", 4: "Ride", 9: "Swim"}

HEADER = [
    "Activity ID", "Activity Date", "Activity Name", "Activity Type", "Activity Description",
    "Elapsed Time", "Distance", "Max Heart Rate", "Relative Effort", "Commute",
    "Activity Private Note", "Activity Gear", "Filename", "Athlete Weight", "Bike Weight",
    "Elapsed Time", "Moving Time", "Distance", "Max Speed", "Average Speed", "Elevation Gain",
]  # fmt: skip

PACE_S_PER_KM = 330


def runs() -> list[tuple[dt.datetime, str, float]]:
    """(UTC start, sport type, km) for every activity of the plan, in order."""
    out = []
    for week, (_, days) in enumerate(PLAN):
        for weekday, km in enumerate(days):
            day = FIRST_MONDAY + dt.timedelta(weeks=week, days=weekday)
            local = dt.datetime.combine(day, dt.time(7, 0), TZ)
            if km:
                out.append((local.astimezone(dt.UTC), "Run", km))
            if weekday == 0 and week in RIDES:
                out.append((local.astimezone(dt.UTC) + dt.timedelta(hours=10), RIDES[week], 30.0))
    return out


def render() -> str:
    """The CSV text, as Strava writes it (English dates in UTC; distance in km, then metres)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for n, (start, sport, km) in enumerate(runs(), start=1):
        seconds = int(km * PACE_S_PER_KM)
        name = "Marathon" if start.date() == RACE_DAY and sport == "Run" else f"Morning {sport}"
        date = start.strftime("%b %-d, %Y, %-I:%M:%S %p")
        writer.writerow([
            9_000_000_000 + n, date, name, sport, "", seconds, f"{km:.2f}", "", "", "false",
            "", "", "", "", "", f"{seconds}.0", f"{seconds}.0", f"{km * 1000:.1f}",
            "", f"{km * 1000 / seconds:.3f}", "",
        ])  # fmt: skip
    return buf.getvalue()


def main() -> None:
    """Rewrite activities.csv beside this script."""
    (HERE / "activities.csv").write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
