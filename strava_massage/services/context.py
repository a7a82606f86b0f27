"""What a job needs (database, Strava adapter, token box, clock), passed in, not looked up."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from strava_massage.advice import DEFAULTS, AdviceSettings
from strava_massage.db import Database
from strava_massage.services.outcomes import Outcome
from strava_massage.strava.client import StravaAPI
from strava_massage.strava.crypto import TokenBox


@dataclass
class Services:
    """What a job needs, passed in rather than looked up, so tests can build their own."""

    db: Database
    strava: StravaAPI
    box: TokenBox
    enqueue: Callable[[int, float], None]  # (event id, delay in seconds)
    advice: AdviceSettings = DEFAULTS
    token_margin: int = 300
    lease_seconds: float = 20.0
    max_attempts: int = 6
    retry_base_seconds: float = 5.0  # first retry's wait; doubled for each further attempt
    on_outcome: Callable[[Outcome], None] = field(default=lambda outcome: None)  # for /metrics
    clock: Callable[[], float] = field(default=time.time)
    # The claims this process is working on, {event id: (claim, since)}: the lease keeper
    # renews their leases every few seconds (renew_leases), so a short lease only ends when its
    # holder dies, or after HOLD_MAX seconds for a job that hangs.
    held: dict[int, tuple[int, float]] = field(default_factory=dict)
    # A pending event sits this many leases past its due time before the sweep re-enqueues it
    # (its task is normally still queued: a longer grace avoids queueing a backlog twice).
    pending_grace_leases: int = 2

    def now(self) -> dt.datetime:
        """The clock as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)
