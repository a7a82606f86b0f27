"""Every scale-out benchmark in one run, on SQLite and on PostgreSQL + Redis, with a summary.

Run: python -m benchmarks [--quick] [--only webhook,pipeline,growth,dashboard]
Each part prints its own table as it goes (see benchmarks/README.md); at the end a summary lists
every target with its figure, and benchmarks/results/summary.json keeps them. The full run takes
about 15-20 minutes on a 2-core machine; --quick runs smaller sizes in a few minutes (its figures
are noisier, and its growth sizes stop at 10k runs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import growth, pipeline, webhook_ack
from benchmarks.common import fresh_postgres, unique_name

RESULTS = Path(__file__).parent / "results" / "summary.json"
PARTS = ("webhook", "pipeline", "growth", "dashboard")


def webhook_part(quick: bool) -> list[tuple[str, str, bool]]:
    """Acknowledgement latency and throughput next to a bare endpoint, both backends."""
    rows = webhook_ack.run(events=300 if quick else 1000, repeat=1 if quick else 3)
    webhook_ack.print_table(rows)
    out = []
    for row in rows:
        if row["concurrency"] != webhook_ack.TARGET_CONCURRENCY:
            continue
        name = f"webhook {row['backend']}, concurrency {row['concurrency']}"
        p99, ratio = row["service"]["p99_ms"], row["ratios"]["throughput"]
        out.append((f"{name}: p99 < 50 ms", f"{p99:.1f} ms", p99 < 50))
        out.append((f"{name}: throughput >= 0.5 of bare", f"{ratio:.2f}", ratio >= 0.5))
    return out


def pipeline_part(quick: bool) -> list[tuple[str, str, bool]]:
    """End-to-end throughput and overhead, Strava calls per event, memory; both backends."""
    out = []
    for backend in pipeline.BACKENDS:
        result = pipeline.run(
            100 if quick else 300, backend, repeat=1 if quick else 3,
            mix_events=1000 if quick else 10_000,
        )  # fmt: skip
        flow, mix = result["throughput"], result["mix"]
        out.append((f"pipeline {backend}: overhead per event < 5 ms beyond the two calls",
                    f"{flow['overhead_ms']:.1f} ms", flow["overhead_ms"] < 5))  # fmt: skip
        out.append((f"pipeline {backend}: Strava calls within 2 % of the minimum",
                    f"{mix['ratio']:.4f}", mix["ratio"] <= 1.02))  # fmt: skip
        web_mb = result["checks"]["web peak RSS under 150 MB"]
        out.append((f"pipeline {backend}: web peak RSS < 150 MB",
                    _rss(mix["memory"]), web_mb))  # fmt: skip
    return out


def _rss(memory: dict[str, Any]) -> str:
    """The web and worker peaks as one short figure."""
    return f"web {memory['web_peak_mb']:.0f} MB, worker {memory['worker_peak_mb']:.0f} MB"


def growth_part(quick: bool) -> list[tuple[str, str, bool]]:
    """Per-event database work at growing history, SQLite then PostgreSQL."""
    sizes = (1000, 10_000) if quick else (1000, 10_000, 100_000)
    runners = 1000 if quick else 10_000
    results = [growth.run(None, sizes, runners)]
    with fresh_postgres(unique_name("legwork_growth")) as url:
        results.append(growth.run(url, sizes, runners))
    out = []
    for result in results:
        largest = str(max(sizes))
        ratio = result["sizes"][largest]["ratio"]
        out.append((f"growth {result['dialect']}: cost at {largest} runs <= 1.5x of 1000",
                    f"{ratio:.2f}", ratio <= 1.5))  # fmt: skip
    return out


def dashboard_part(quick: bool) -> list[tuple[str, str, bool]]:
    """The dashboard's server time for a runner with 3,000 runs (its own process)."""
    requests = "50" if quick else "200"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.dashboard", "--requests", requests], check=True
    )
    figures = json.loads((RESULTS.parent / "dashboard.json").read_text())
    p50 = figures["runners"]["large"]["p50_ms"]
    return [("dashboard: p50 < 50 ms at 3,000 runs", f"{p50:.1f} ms", p50 < 50)]


def main() -> None:
    """Run the chosen parts, then print and save the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    args = parser.parse_args()
    runners = {"webhook": webhook_part, "pipeline": pipeline_part, "growth": growth_part,
               "dashboard": dashboard_part}  # fmt: skip
    summary: list[tuple[str, str, bool]] = []
    for part in args.only.split(","):
        print(f"\n===== {part} =====", flush=True)
        summary += runners[part](args.quick)
    width = max(len(name) for name, _, _ in summary)
    print(f"\n===== summary{' (quick: sizes reduced)' if args.quick else ''} =====")
    for name, figure, ok in summary:
        print(f"{'PASS' if ok else 'FAIL'}  {name:<{width}}  {figure}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(
        [{"target": n, "figure": f, "pass": ok} for n, f, ok in summary], indent=1
    ))  # fmt: skip
    print(f"results written to {RESULTS.parent}/")


if __name__ == "__main__":
    main()
