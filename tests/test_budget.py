"""The rate budget on a real database: both windows at once, or neither."""

from __future__ import annotations

import pytest

from strava_massage.db import Database
from strava_massage.strava.budget import Budget
from strava_massage.strava.client import RateLimited

NOW = 1_800_000_123.0  # 123 s into a 15-minute window, 40,923 s into a UTC day


SHORT_RESET = 900 - 123
DAILY_RESET = 86400 - NOW % 86400


@pytest.mark.parametrize(
    ("limits", "taken", "wait", "left"),
    [
        # The daily window had room and took its share in the same statement: given back.
        pytest.param((10, 50), 10, SHORT_RESET, {"short": 0, "daily": 40}, id="short-full"),
        pytest.param((100, 6), 6, DAILY_RESET, {"short": 94, "daily": 0}, id="daily-full"),
        # Both full: waiting for the short window alone would only be refused again.
        pytest.param((4, 4), 4, DAILY_RESET, {"short": 0, "daily": 0}, id="both-full"),
    ],
)
def test_a_full_window_refuses_and_takes_nothing_from_the_other(
    db: Database, limits: tuple[int, int], taken: int, wait: float, left: dict[str, int]
) -> None:
    budget = Budget(db, limits=limits, clock=lambda: NOW)
    for _ in range(taken // 2):
        budget.reserve(2)
    with pytest.raises(RateLimited) as refused:
        budget.reserve(2)
    assert refused.value.retry_after == pytest.approx(wait)
    assert budget.remaining() == left


def test_a_new_window_starts_from_zero_and_a_refund_stays_in_its_window(db: Database) -> None:
    now = [NOW]
    budget = Budget(db, limits=(10, 50), clock=lambda: now[0])
    budget.reserve(8)
    now[0] += 900  # the next short window; the same day
    budget.reserve(3)
    assert budget.remaining() == {"short": 7, "daily": 39}
    budget.refund(1)
    assert budget.remaining() == {"short": 8, "daily": 40}
