"""Every benchmark in one run, on the embedded default and on scale-out, with a summary.

Run: python -m benchmarks [--quick]
Each backend gets a fresh stack: the Strava simulator (answering at once) in this process, the
service's own processes started from its command line, a fresh database and queue. On it: a
burst of new runs (intake and worker), a mix of events (Strava calls), memory after both, time
to note (embedded default only), history growth and the dashboard. The summary lists every
figure beside its target and its baseline from the same run; margin > 1 means passing (figure
/ target for a floor, target / figure for a ceiling). Results go to benchmarks/results/.
About 6 minutes in full on a 2-core machine; --quick (smaller sizes, one round) about 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks import growth, intake, pipeline
from benchmarks.common import BACKENDS, progress, stack

RESULTS = Path(__file__).parent / "results"
FULL = {"events": 600, "rounds": 3, "mix": 1000, "notes": 30, "small": 1000, "large": 100_000,
        "background": 4000, "growth_rounds": 40, "pages": 100}  # fmt: skip
QUICK = {"events": 300, "rounds": 1, "mix": 200, "notes": 10, "small": 1000, "large": 10_000,
         "background": 500, "growth_rounds": 15, "pages": 30}  # fmt: skip


class Row(NamedTuple):
    """One figure of the summary."""

    name: str
    backend: str
    value: float
    unit: str
    target: float
    floor: bool  # True: the figure must reach the target; False: stay within it
    baseline: str

    @property
    def margin(self) -> float:
        """Above 1 when passing."""
        return self.value / self.target if self.floor else self.target / max(self.value, 1e-9)

    @property
    def passed(self) -> bool:
        """Whether the figure meets its target."""
        return self.value >= self.target if self.floor else self.value <= self.target


def measure(kind: str, size: dict[str, int]) -> tuple[list[Row], dict[str, Any]]:
    """Every figure of one backend."""
    rows: list[Row] = []
    with stack(kind) as s:
        burst = intake.run(s, size["events"], size["rounds"])
        svc, bare, work = burst["service"], burst["bare"], burst["worker"]
        base = f"bare Flask {burst['shape']}:"
        rows += [
            Row("intake, concurrency 8", kind, svc["events_per_s"], "events/s", 300, True,
                f"{base} {bare['events_per_s']:.0f} events/s"),
            Row("intake p99, concurrency 8", kind, svc["p99_ms"], "ms", 100, False,
                f"{base} {bare['p99_ms']:.1f} ms"),
            Row("worker runs noted", kind, work["runs_per_s"], "runs/s", 20, True,
                f"bare GET+PUT one by one: {work['bare_per_s']:.0f}/s"),
        ]  # fmt: skip
        runners = [a for a, _ in s.connect(intake.RUNNERS)]
        calls = pipeline.mix(s, runners, size["mix"])
        rows.append(Row("Strava calls over the mix", kind, calls["total"], "calls",
                        calls["fewest"], False, f"the minimum: {calls['fewest']} for "
                        f"{size['mix']} deliveries"))  # fmt: skip
        memory = s.memory()
        for role in ("web", "worker"):
            peaks = [m["VmHWM"] for name, m in memory.items() if name.startswith(role)]
            if peaks:
                label = "serve (web + worker)" if kind == "embedded" else role
                rows.append(Row(f"peak RSS, {label} process", kind, max(peaks), "MB", 150, False,
                                f"at start: {s.start_mb[role]:.0f} MB"))  # fmt: skip
        notes = None
        if kind == "embedded":
            notes = pipeline.time_to_note(s, runners[0], size["notes"])
            trip = f"simulator GET+PUT: {notes['bare_ms']:.1f} ms"
            rows += [
                Row("time to note p50", kind, notes["p50_s"], "s", 1, False, trip),
                Row("time to note p99", kind, notes["p99_s"], "s", 2, False, trip),
            ]
        grown = growth.run(s, size["small"], size["large"], size["background"],
                           size["growth_rounds"], size["pages"])  # fmt: skip
        small, large = (grown["p50_ms"][str(size[k])] for k in ("small", "large"))
        rows.append(Row(f"cost per run, {size['large']:,} vs {size['small']:,} runs", kind,
                        large / small, "x", 1.5, False,
                        f"p50 {small:.1f} ms at {size['small']:,}, {large:.1f} ms at "
                        f"{size['large']:,}"))  # fmt: skip
        page = grown["dashboard_p50_ms"]
        rows.append(Row("dashboard p50, 3,000 runs", kind, page["3000"], "ms", 50, False,
                        f"30 runs: {page['30']:.1f} ms"))  # fmt: skip
    return rows, {"burst": burst, "mix": calls, "memory": memory, "memory_start": s.start_mb,
                  "time_to_note": notes, "growth": grown}  # fmt: skip


def print_summary(rows: list[Row], quick: bool) -> None:
    """The table: figure, target, margin, verdict, baseline."""
    print(f"\n===== summary{' (--quick: smaller sizes, one round)' if quick else ''} =====")
    print("margin > 1 passes: figure/target for a floor (>=), target/figure for a ceiling (<=)\n")
    print(f"{'figure':<40}{'backend':<11}{'value':>16}{'target':>16}{'margin':>8}  result  "
          "baseline, same run")  # fmt: skip
    for row in rows:
        value = f"{row.value:,.2f} {row.unit}" if row.value < 10 else f"{row.value:,.0f} {row.unit}"
        target = f"{'>=' if row.floor else '<='} {row.target:,g} {row.unit}"
        print(f"{row.name:<40}{row.backend:<11}{value:>16}{target:>16}{row.margin:>8.2f}  "
              f"{'PASS' if row.passed else 'FAIL':<6}  {row.baseline}")  # fmt: skip


def main() -> None:
    """Measure both backends, print the summary, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the processes, database and queue keys are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = QUICK if args.quick else FULL
    rows: list[Row] = []
    details = {}
    for kind, described in BACKENDS.items():
        progress(f"===== {kind}: {described}")
        found, details[kind] = measure(kind, size)
        rows += found
    print_summary(rows, args.quick)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("summary-quick.json" if args.quick else "summary.json")
    out.write_text(json.dumps({
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "sizes": size,
        "summary": [row._asdict() | {"margin": row.margin, "pass": row.passed} for row in rows],
        "details": details,
    }, indent=1, default=str))  # fmt: skip
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
