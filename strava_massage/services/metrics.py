"""Counters and gauges for `/metrics`, in Prometheus's text format.

Calls to Strava and event outcomes are counted by the process that handled them (the web
process runs the embedded worker by default); stored events, the rate budget and the queue
depth are read from the shared database and queue at scrape time, so any process reports
them for the whole deployment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from strava_massage.models import Event

if TYPE_CHECKING:
    from strava_massage.services.outcomes import Outcome

_ID = re.compile(r"/\d+(?=/|$)")


def endpoint_label(path: str) -> str:
    """A URL path with ids folded, so every activity shares one label."""
    return _ID.sub("/{id}", path.split("?", 1)[0])


class Metrics:
    """One registry per app, so tests can build many apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.strava_calls = Counter(
            "legwork_strava_calls",
            "Requests this process sent to Strava, by endpoint and HTTP status",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "legwork_events_handled",
            "Events this process handled, by kind of outcome",
            ["outcome"],
            registry=self.registry,
        )

        self.athlete_limit_refusals = Counter(
            "legwork_strava_athlete_limit_refusals",
            "New runners Strava refused because the app is at its athlete limit (this process)",
            registry=self.registry,
        )

    def count_call(self, method: str, path: str, status: str) -> None:
        """Record one request to Strava."""
        self.strava_calls.labels(method, endpoint_label(path), status).inc()

    def count_outcome(self, outcome: Outcome) -> None:
        """Record how one event ended (this time round), by its kind."""
        self.outcomes.labels(outcome.kind.value).inc()

    def watch(self, db: Any, budget: Any, tasks: Any) -> None:
        """Report the shared state too, read when scraped."""
        self.registry.register(_SharedState(db, budget, tasks))

    def render(self) -> bytes:
        """The exposition text."""
        return bytes(generate_latest(self.registry))


class _SharedState(Collector):
    """Stored events by status, the rate budget left and the queue depth."""

    def __init__(self, db: Any, budget: Any, tasks: Any) -> None:
        self.db, self.budget, self.tasks = db, budget, tasks

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the database and the queue now."""
        events = GaugeMetricFamily(
            "legwork_events", "Stored events by status (all processes)", labels=["status"]
        )
        with self.db.session() as session:
            rows = session.execute(select(Event.status, func.count()).group_by(Event.status))
            for status, count in rows:
                events.add_metric([status], count)
        yield events
        budget = GaugeMetricFamily(
            "legwork_strava_budget_remaining",
            "Strava requests left in the current rate window",
            labels=["window"],
        )
        for window, left in self.budget.remaining().items():
            budget.add_metric([window], left)
        yield budget
        yield GaugeMetricFamily(
            "legwork_queue_depth", "Tasks waiting in the queue", value=self.tasks.depth()
        )
