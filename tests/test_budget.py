"""The rate budget on a real database: both windows at once, or neither."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strava_massage.budget import Budget
from strava_massage.db import Database
from strava_massage.strava import RateLimited

from .conftest import Backend

NOW = 1_800_000_123.0  # 123 s into a 15-minute window, 40,923 s into a UTC day


@pytest.fixture
def db(backend: Backend) -> Iterator[Database]:
    """The backend's database with the schema."""
    database = Database(backend.database_url)
    database.upgrade()
    yield database
    database.dispose()


def test_a_full_short_window_takes_nothing_from_the_daily_one(db: Database) -> None:
    budget = Budget(db, limits=(10, 50), clock=lambda: NOW)
    for _ in range(5):
        budget.reserve(2)
    with pytest.raises(RateLimited) as refused:
        budget.reserve(2)
    assert refused.value.retry_after == pytest.approx(900 - 123)
    # The daily window had room and took its share in the same statement: it was given back.
    assert budget.remaining() == {"short": 0, "daily": 40}


def test_a_full_daily_window_waits_for_midnight_and_gives_the_short_share_back(
    db: Database,
) -> None:
    budget = Budget(db, limits=(100, 6), clock=lambda: NOW)
    for _ in range(3):
        budget.reserve(2)
    with pytest.raises(RateLimited) as refused:
        budget.reserve(2)
    assert refused.value.retry_after == pytest.approx(86400 - NOW % 86400)
    assert budget.remaining() == {"short": 94, "daily": 0}


def test_both_full_waits_for_the_later_reset(db: Database) -> None:
    budget = Budget(db, limits=(4, 4), clock=lambda: NOW)
    budget.reserve(4)
    with pytest.raises(RateLimited) as refused:
        budget.reserve(1)
    assert refused.value.retry_after == pytest.approx(86400 - NOW % 86400)
    assert budget.remaining() == {"short": 0, "daily": 0}


def test_a_new_window_starts_from_zero_and_a_refund_stays_in_its_window(db: Database) -> None:
    now = [NOW]
    budget = Budget(db, limits=(10, 50), clock=lambda: now[0])
    budget.reserve(8)
    now[0] += 900  # the next short window; the same day
    budget.reserve(3)
    assert budget.remaining() == {"short": 7, "daily": 39}
    budget.refund(1)
    assert budget.remaining() == {"short": 8, "daily": 40}
