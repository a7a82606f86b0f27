"""Two app instances refreshing one runner's expired token at once: one refresh, same token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cryptography.fernet import Fernet
from sqlalchemy import select

from strava_massage.models import Token
from strava_massage.services.context import Services
from strava_massage.strava.tokens import access_token

from .conftest import Stack

CALLERS = 8  # four per app instance
HOLD_SECONDS = 0.3  # how long the refreshing caller keeps the lock with Strava's answer


def _services(stack: Stack) -> Services:
    """The job services (Strava adapter, token box, database) of one app instance."""
    svc: Services = stack.app.extensions["services"]
    return svc


def _expire(stack: Stack, athlete_id: int) -> None:
    """Make the runner's access token dead at the simulator and due in the database."""
    assert stack.sim.expire_tokens(athlete_id) >= 1
    with stack.db.session() as session:
        row = session.get(Token, athlete_id)
        assert row is not None
        row.expires_at = int(time.time()) - 10
        session.commit()


class _RaceClock:
    """A clock for access_token that lines every caller up behind the expiry check.

    access_token reads the clock once on its fast path (is the token still good?) and once
    more after taking the row lock. Holding everyone at a barrier after the first reading
    guarantees all callers saw the token expired and go for the lock together; making the
    first caller to get the lock wait before reading on holds the lock while the others
    queue behind it, as a slow Strava would.
    """

    def __init__(self, callers: int) -> None:
        self.barrier = threading.Barrier(callers, timeout=30)
        self.readings = threading.local()
        self.guard = threading.Lock()
        self.holders = 0

    def __call__(self) -> float:
        """Now, after the waits described above."""
        count = getattr(self.readings, "count", 0) + 1
        self.readings.count = count
        if count == 1:
            self.barrier.wait()
        elif count == 2:
            with self.guard:
                self.holders += 1
                first = self.holders == 1
            if first:
                time.sleep(HOLD_SECONDS)
        return time.time()


def _race(stacks: list[Stack], athlete_id: int) -> list[str]:
    """CALLERS threads, spread over the app instances, all asking for a token at once."""
    clock = _RaceClock(CALLERS)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def caller(svc: Services) -> None:
        try:
            token = access_token(
                svc.db, svc.strava, svc.box, athlete_id, margin=svc.token_margin, clock=clock
            )
        except BaseException as e:  # reported below: a thread's exception would be lost
            errors.append(e)
            clock.barrier.abort()  # free the others rather than leave them to time out
        else:
            tokens.append(token)

    threads = [
        threading.Thread(target=caller, args=(_services(stacks[n % len(stacks)]),))
        for n in range(CALLERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a caller never returned"
    assert not errors, errors
    # Every caller passed the expiry check before anyone refreshed: this really was a race.
    assert clock.barrier.n_waiting == 0 and not clock.barrier.broken
    assert clock.holders == CALLERS, "some caller never reached the locked re-check"
    assert len(tokens) == CALLERS
    return tokens


def _stored(stack: Stack, athlete_id: int) -> tuple[str, str, int]:
    """The stored access token, refresh token and expiry, decrypted."""
    svc = _services(stack)
    with stack.db.session() as session:
        row = session.scalars(select(Token).where(Token.athlete_id == athlete_id)).one()
        return svc.box.open(row.access_token), svc.box.open(row.refresh_token), row.expires_at


def _assert_one_refresh(stack: Stack, athlete_id: int, tokens: list[str], refreshes: int) -> None:
    """One refresh per race reached Strava, and every caller holds its (stored) result."""
    calls = stack.sim.calls("POST", "/oauth/token")
    assert [c.status for c in calls] == [200] * refreshes, calls
    assert stack.sim.refresh_count(athlete_id) == refreshes
    assert len(set(tokens)) == 1, set(tokens)
    access, _, expires_at = _stored(stack, athlete_id)
    assert tokens[0] == access
    assert expires_at > time.time() + 3600
    # The token works at Strava, asked for over HTTP by either app instance.
    assert stack.sim.check_access_token(access)[0] == athlete_id
    assert _services(stack).strava.get_athlete(access).id == athlete_id


def test_concurrent_refresh_across_two_app_instances_refreshes_once(
    make_stack: Callable[..., Stack],
) -> None:
    """Eight callers over two app instances, twice: one refresh each time, tokens stay valid."""
    # Both instances must decrypt each other's tokens, as two deployed processes would.
    keys = Fernet.generate_key().decode()
    first = make_stack(TOKEN_KEYS=keys)
    second = make_stack(TOKEN_KEYS=keys)  # same database, its own engine and connections
    assert first.db.engine is not second.db.engine
    athlete_id = int(first.sim.create_athlete()["id"])
    first.connect(athlete_id)  # no worker runs, so the history import never asks for a token
    first.sim.reset_calls()
    _, connected_refresh, _ = _stored(first, athlete_id)

    _expire(first, athlete_id)
    tokens = _race([first, second], athlete_id)
    _assert_one_refresh(first, athlete_id, tokens, refreshes=1)
    # The stored refresh token is the rotated one (the one used at connect is dead now).
    _, rotated, _ = _stored(second, athlete_id)
    assert rotated != connected_refresh

    # Again: only works if the first race stored the refresh token Strava still honours.
    _expire(second, athlete_id)
    again = _race([second, first], athlete_id)
    _assert_one_refresh(second, athlete_id, again, refreshes=2)
    assert again[0] != tokens[0]
    # The instance that did not refresh this time reads the same, working pair.
    assert _stored(first, athlete_id)[0] == again[0]
    assert _services(first).strava.get_athlete(again[0]).id == athlete_id
