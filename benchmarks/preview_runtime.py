"""How long `strava-massage preview` takes on a long history: 1 year and 10 years of daily runs.

Run: python -m benchmarks.preview_runtime [--years N]
Prints the runtime of each size side by side and the ratio between them (10x the runs should
cost about 10x the time: the per-run work must not grow with the history).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import resource
import tempfile
import time
from pathlib import Path

from strava_massage.preview import format_preview, read_export, replay

HEADER = ["Activity ID", "Activity Date", "Activity Type", "Elapsed Time", "Distance",
          "Moving Time", "Distance"]  # fmt: skip


def write_export(path: Path, days: int, seed: int = 7) -> None:
    """A daily runner: easy days, a long Sunday, a race every spring and autumn, some rides."""
    rng = random.Random(seed)
    start = dt.datetime(2015, 1, 5, 6, 30, tzinfo=dt.UTC)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for n in range(days):
            when = start + dt.timedelta(days=n, minutes=rng.randint(0, 90))
            km = rng.uniform(14, 30) if when.weekday() == 6 else rng.uniform(5, 12)
            seconds = int(km * rng.uniform(280, 360))
            stamp = when.strftime("%b %-d, %Y, %-I:%M:%S %p")
            out.writerow([n + 1, stamp, "Run", seconds, f"{km:.2f}", seconds, f"{km * 1000:.1f}"])
            if n % 9 == 0:
                out.writerow([10**6 + n, stamp, "Ride", 3600, "30.00", 3600, "30000.0"])


def races(days: int) -> list[dt.date]:
    """A Sunday race in April and October of each year."""
    first = dt.date(2015, 1, 5)
    out = []
    for year in range(first.year, first.year + days // 365 + 1):
        for month in (4, 10):
            day = dt.date(year, month, 20)
            out.append(day + dt.timedelta(days=6 - day.weekday()))
    return [d for d in out if (d - first).days < days]


def measure(days: int, folder: Path) -> tuple[float, int, int]:
    """Seconds for read + replay + format, runs replayed, lines printed."""
    path = folder / f"activities-{days}.csv"
    write_export(path, days)
    t0 = time.perf_counter()
    export = read_export(path)
    notes = replay(export.runs, units="km", races=races(days))
    lines = sum(1 for _ in format_preview(export, notes, "km"))
    return time.perf_counter() - t0, len(notes), lines


def main() -> None:
    """Measure a small and a large history in one run and print both with their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10, help="the long history [10]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure(30, Path(tmp))  # warm imports and caches, so the small size is not penalised
        small = measure(365, Path(tmp))
        large = measure(365 * args.years, Path(tmp))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'history':<10} {'runs':>6} {'seconds':>8} {'ms/run':>7} {'lines':>6}")
    for label, (secs, runs, lines) in (("1 year", small), (f"{args.years} years", large)):
        print(f"{label:<10} {runs:>6} {secs:>8.2f} {secs / runs * 1000:>7.2f} {lines:>6}")
    ratio = large[0] / small[0]
    print(f"time ratio {ratio:.1f} for {large[1] / small[1]:.1f}x the runs "
          f"(per-run cost ratio {ratio / (large[1] / small[1]):.2f}; 1.0 = linear)")  # fmt: skip
    print(f"peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
