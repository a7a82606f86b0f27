"""Fakes for the service-layer tests: a Strava in memory and the worker's services on an
in-memory SQLite database, with a clock that moves only when told.

The worker's decisions (what a job reads, writes and calls for each kind of event) are tested
here without HTTP, threads or processes; the simulator and the real queue stay for the edges
(tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from cryptography.fernet import Fernet
from sqlalchemy import func, inspect, select

from strava_massage.db import Database
from strava_massage.domain.activity import ActivityInfo
from strava_massage.models import Athlete, Base, Event
from strava_massage.services.context import Services
from strava_massage.services.outcomes import Outcome
from strava_massage.strava.client import (
    AthleteInfo,
    NotFound,
    RateLimited,
    RefreshRefused,
    StravaError,
    TokenGrant,
    Unauthorized,
)
from strava_massage.strava.crypto import TokenBox
from strava_massage.strava.tokens import store_grant
from strava_massage.worker import jobs

T = TypeVar("T")
TOKEN_LIFE = 6 * 3600  # seconds, as Strava grants
WINDOW = 900  # Strava's short rate window


def next_window_top() -> float:
    """The start of a 15-minute rate window one to sixteen minutes ahead of the wall clock."""
    return float(((int(time.time()) + 60) // WINDOW + 1) * WINDOW)


class Clock:
    """Seconds since the epoch, moved only by `advance`: a callable like time.time.

    It starts at the top of a rate window (a window's whole allowance ahead), a few minutes
    ahead of the wall clock, so never behind it during a test: some rows take their times from
    the wall clock (the models' defaults), and must not look due later than the clock's now.
    """

    def __init__(self, now: float | None = None) -> None:
        self.now = next_window_top() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds

    def at(self, seconds: float = 0.0) -> dt.datetime:
        """The clock, `seconds` from now, as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.now + seconds, dt.UTC)


@dataclass(frozen=True)
class Call:
    """One request the fake Strava received: its method, what it named, and its outcome."""

    method: str  # the StravaAPI method: get_activity, update_description, refresh, ...
    athlete_id: int | None  # whose token it carried (None: an unknown token, or none)
    activity_id: int | None = None
    error: str | None = None  # the exception it answered with, by name


class FakeStrava:
    """What the worker uses of strava.client.StravaAPI, over activities and grants in memory.

    Every request is recorded in `requests` (`count` sums them); `calls` counts API requests
    as StravaAPI.calls does (OAuth ones are not API requests). `fail(method, *errors)` makes
    that method's next requests raise the given errors, one each, after recording them (as
    Strava answering 429, 5xx, 401 or 404 would); `spent` raises RateLimited before any
    request (the budget has nothing left), and a real `budget` (strava.budget.Budget) can be
    plugged in as on the real adapter.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.activities: dict[int, ActivityInfo] = {}
        self.units: dict[int, str] = {}  # runners, with their measurement preference
        self.access: dict[str, int] = {}  # live access token -> runner
        self.refresh_tokens: dict[str, int] = {}  # live refresh token -> runner
        self.keeps_private_notes = True  # False: a private-note PUT answers 200, keeps nothing
        self.failures: dict[str, list[StravaError]] = {}
        self.spent: float | None = None  # seconds to the window's reset when the budget is spent
        self.budget: Any = None
        self.requests: list[Call] = []
        self.calls = 0
        self.refunds = 0
        self._ids = itertools.count(1)
        self._next_activity = itertools.count(9_000_001)

    # -- the world at Strava --------------------------------------------------------------

    def grant(self, athlete_id: int, units: str = "km") -> TokenGrant:
        """A runner approves the app: a fresh token pair."""
        self.units[athlete_id] = units
        return self._grant(athlete_id)

    def _grant(self, athlete_id: int) -> TokenGrant:
        n = next(self._ids)
        access, refresh = f"access-{athlete_id}-{n}", f"refresh-{athlete_id}-{n}"
        self.access[access] = athlete_id
        self.refresh_tokens[refresh] = athlete_id
        return TokenGrant(access, refresh, int(self.clock()) + TOKEN_LIFE, athlete_id)

    def revoke_access(self, athlete_id: int) -> None:
        """The runner revokes the app on Strava's settings page: every token of theirs dies."""
        for tokens in (self.access, self.refresh_tokens):
            for token in [t for t, owner in tokens.items() if owner == athlete_id]:
                del tokens[token]

    def upload(
        self,
        athlete_id: int,
        *,
        sport_type: str = "Run",
        distance_m: float = 10_000.0,
        moving_time_s: int = 3000,
        start: dt.datetime | None = None,
        timezone: str | None = "(GMT+00:00) Europe/London",
        workout_type: int | None = None,
        description: str = "",
        private_note: str | None = None,
    ) -> int:
        """An activity of the runner's on Strava (this morning by default); its id."""
        activity_id = next(self._next_activity)
        self.activities[activity_id] = ActivityInfo(
            id=activity_id,
            athlete_id=athlete_id,
            sport_type=sport_type,
            distance_m=distance_m,
            moving_time_s=moving_time_s,
            start_date_local=start or self.clock.at(-4 * 3600).replace(tzinfo=None),
            timezone=timezone,
            workout_type=workout_type,
            description=description,
            private_note=private_note,
        )
        return activity_id

    def edit(self, activity_id: int, **changes: Any) -> None:
        """The runner changes the activity on Strava (its sport, description, ...)."""
        self.activities[activity_id] = replace(self.activities[activity_id], **changes)

    def description(self, activity_id: int) -> str:
        """The activity's description as Strava stores it now."""
        return self.activities[activity_id].description

    def fail(self, method: str, *errors: StravaError) -> None:
        """Answer the next requests of `method` with these errors, one request each."""
        self.failures.setdefault(method, []).extend(errors)

    def count(self, method: str | None = None, activity_id: int | None = None) -> int:
        """Requests received, of one method and one activity if given."""
        return sum(
            (method is None or c.method == method)
            and (activity_id is None or c.activity_id == activity_id)
            for c in self.requests
        )

    def methods(self) -> Counter[str]:
        """How many requests of each method were received."""
        return Counter(c.method for c in self.requests)

    # -- what StravaAPI offers the worker ---------------------------------------------------

    def check_budget(self, calls: int = 1, *, low_priority: bool = False) -> None:
        if self.budget is not None:
            self.budget.reserve(calls, spare=low_priority)
        elif self.spent is not None:
            raise RateLimited(self.spent)

    def refund(self) -> None:
        self.refunds += 1
        if self.budget is not None:
            self.budget.refund()

    def get_athlete(self, access_token: str, *, budgeted: bool = True) -> AthleteInfo:
        if budgeted:
            self.check_budget()
        athlete_id = self._request("get_athlete", access_token)
        return AthleteInfo(athlete_id, self.units[athlete_id])

    def get_activity(
        self, access_token: str, activity_id: int, *, low_priority: bool = False
    ) -> ActivityInfo:
        self.check_budget(calls=2, low_priority=low_priority)  # the GET, and the PUT after it
        try:
            self._request("get_activity", access_token, activity_id)
            return self._activity(activity_id)
        except StravaError:
            self.refund()  # no PUT follows a failed GET
            raise

    def get_private_note(self, access_token: str, activity_id: int) -> str:
        self.check_budget()
        self._request("get_private_note", access_token, activity_id)
        return self._activity(activity_id).private_note or ""

    def list_activities(self, access_token: str, after: dt.datetime) -> list[ActivityInfo]:
        self.check_budget()
        athlete_id = self._request("list_activities", access_token)
        since = after.replace(tzinfo=None)
        return [
            a
            for a in self.activities.values()
            if a.athlete_id == athlete_id and a.start_date_local > since
        ]

    def update_description(
        self, access_token: str, activity_id: int, description: str, *, prepaid: bool = False
    ) -> None:
        if not prepaid:
            self.check_budget()
        self._put("update_description", access_token, activity_id, description=description)

    def update_private_note(
        self, access_token: str, activity_id: int, text: str, *, prepaid: bool = False
    ) -> None:
        if not prepaid:
            self.check_budget()
        self._put("update_private_note", access_token, activity_id, private_note=text)

    def refresh(self, refresh_token: str) -> TokenGrant:
        athlete_id = self.refresh_tokens.get(refresh_token)
        self._record("refresh", athlete_id, None, api=False)
        if athlete_id is None:
            raise RefreshRefused("Strava refused the refresh token (400)")
        # Strava rotates: the old refresh token and the old access tokens are dead from now on.
        for token in [t for t, owner in self.access.items() if owner == athlete_id]:
            del self.access[token]
        del self.refresh_tokens[refresh_token]
        return self._grant(athlete_id)

    def disconnect(self, access_token: str) -> None:
        athlete_id = self.access.get(access_token)
        self._record("disconnect", athlete_id, None, api=False)
        if athlete_id is None:
            raise Unauthorized("Strava answered 401")
        self.revoke_access(athlete_id)

    # -- plumbing ---------------------------------------------------------------------------

    def _activity(self, activity_id: int) -> ActivityInfo:
        found = self.activities.get(activity_id)
        if found is None:
            raise NotFound("Strava answered 404")
        return found

    def _put(self, method: str, token: str, activity_id: int, **fields: str) -> None:
        athlete_id = self._request(method, token, activity_id)
        if self._activity(activity_id).athlete_id != athlete_id:
            raise NotFound("Strava answered 404")  # only the owner may write an activity
        if method == "update_private_note" and not self.keeps_private_notes:
            return
        self.edit(activity_id, **fields)

    def _request(self, method: str, token: str, activity_id: int | None = None) -> int:
        """Record an API request and answer it: its runner, or the error it gets."""
        athlete_id = self.access.get(token)
        queued = self.failures.get(method)
        error: StravaError | None = queued.pop(0) if queued else None
        if error is None and athlete_id is None:
            error = Unauthorized("Strava answered 401")
        self._record(method, athlete_id, activity_id, error=error)
        if error is not None:
            raise error
        assert athlete_id is not None
        return athlete_id

    def _record(
        self,
        method: str,
        athlete_id: int | None,
        activity_id: int | None,
        *,
        error: Exception | None = None,
        api: bool = True,
    ) -> None:
        self.requests.append(
            Call(method, athlete_id, activity_id, type(error).__name__ if error else None)
        )
        self.calls += api


@dataclass
class World:
    """The worker's services on an in-memory database, a fake Strava, a clock that waits to
    be moved, and the queue's work recorded instead of run."""

    svc: Services
    strava: FakeStrava
    clock: Clock
    enqueued: list[tuple[int, float]] = field(default_factory=list)  # (event id, delay)
    outcomes: list[Outcome] = field(default_factory=list)
    _events: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def db(self) -> Database:
        return self.svc.db

    def runner(
        self,
        athlete_id: int,
        *,
        units: str = "km",
        connected_days_ago: float = 30,
        token_expires_in: float = TOKEN_LIFE,
        **columns: Any,
    ) -> int:
        """A runner who connected (a grant at the fake Strava, their row and sealed token)."""
        grant = self.strava.grant(athlete_id, units)
        grant = replace(grant, expires_at=int(self.clock() + token_expires_in))
        connected = self.clock.at(-connected_days_ago * 86400)
        with self.db.session() as session:
            session.add(Athlete(id=athlete_id, units=units, connected_at=connected, **columns))
            session.flush()
            store_grant(session, self.svc.box, athlete_id, grant)
            session.commit()
        return athlete_id

    def event(
        self,
        owner: int,
        object_id: int,
        aspect_type: str = "create",
        *,
        object_type: str = "activity",
        updates: dict[str, Any] | None = None,
        received_ago: float = 0,
    ) -> int:
        """A webhook event as the intake stores it: pending, due now; its id."""
        n = next(self._events)
        at = self.clock.at(-received_ago)
        with self.db.session() as session:
            event = Event(
                dedupe_key=f"fake-{n}",
                object_type=object_type,
                object_id=object_id,
                aspect_type=aspect_type,
                owner_id=owner,
                updates=updates or {},
                event_time=int(self.clock()) + n,
                status="pending",
                attempts=0,
                received_at=at,
                due_at=at,
            )
            session.add(event)
            session.commit()
            return event.id

    def process(self, event_id: int) -> Outcome:
        """Run the worker's job for the event, as a queue task would."""
        return jobs.process_event(self.svc, event_id)

    def run(self, athlete_id: int, **fields: Any) -> tuple[int, int]:
        """A runner uploads an activity and Strava announces it: (activity id, event id)."""
        activity_id = self.strava.upload(athlete_id, **fields)
        return activity_id, self.event(athlete_id, activity_id)

    def get(self, model: type[T], key: Any) -> T | None:
        """One row by primary key (detached), or None."""
        with self.db.session() as session:
            return session.get(model, key)

    def rows(self, model: type[T], **where: Any) -> list[T]:
        """The table's rows (those matching `where`), in primary-key order."""
        with self.db.session() as session:
            query = select(model).filter_by(**where)
            return list(session.scalars(query.order_by(*inspect(model).primary_key)))

    def count(self, model: type[Any]) -> int:
        """How many rows the table holds."""
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


def make_world(**settings: Any) -> World:
    """A World on a fresh in-memory database; `settings` override the Services' defaults.

    `sqlite://` is one in-memory database per connection: SQLAlchemy's SingletonThreadPool
    (its default for it) hands a thread the same connection every time, so every session of
    a single-threaded test sees one database, and db.py's BEGIN IMMEDIATE holds as on a
    file. The schema is the models' (test_migrations proves the migrations build the same):
    Alembic would open a connection of its own, to another in-memory database.
    """
    db = Database("sqlite://")
    Base.metadata.create_all(db.engine)
    clock = Clock()
    strava = FakeStrava(clock)
    enqueued: list[tuple[int, float]] = []
    outcomes: list[Outcome] = []
    svc = Services(
        db=db,
        strava=strava,  # type: ignore[arg-type]  # the surface of StravaAPI the worker uses
        box=TokenBox(Fernet.generate_key().decode()),
        enqueue=lambda event_id, delay: enqueued.append((event_id, delay)),
        on_outcome=outcomes.append,
        clock=clock,
        **settings,
    )
    return World(svc, strava, clock, enqueued, outcomes)
