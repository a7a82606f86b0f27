"""The real Strava (issue 20): units, athlete capacity, disconnecting, hosts, the private note,
revocation by refusal, and a connect that never waits on the budget. Real HTTP throughout."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from sqlalchemy import select, update

from strava_massage.domain.merge import BLOCK_START
from strava_massage.models import Athlete, Event, Token
from strava_massage.services.accounts import disconnect_athlete
from strava_massage.services.context import Services
from strava_massage.strava.client import RateLimited, StravaAPI, athlete_info

from .conftest import Stack, serve

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _services(stack: Stack) -> Services:
    """The app's job services (Strava adapter, database, token box)."""
    svc: Services = stack.app.extensions["services"]
    return svc


def _athlete(stack: Stack, athlete_id: int) -> Athlete | None:
    """The stored runner, if any."""
    with stack.db.session() as session:
        return session.get(Athlete, athlete_id)


def _secrets(stack: Stack) -> list[str]:
    """Everything that must never reach a log line."""
    return [*stack.sim.issued_secrets(), stack.sim.client_secret]


# -- units ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"id": 1, "measurement_preference": "meters", "country": "United States"}, "km"),
        ({"id": 1, "measurement_preference": "feet", "country": "France"}, "mi"),
        ({"id": 1, "country": "United States"}, "mi"),
        ({"id": 1, "country": "united kingdom"}, "mi"),
        ({"id": 1, "country": "LR"}, "mi"),
        ({"id": 1, "country": "Myanmar"}, "mi"),
        ({"id": 1, "country": "Germany"}, "km"),
        ({"id": 1, "country": None}, "km"),
        ({"id": 1}, "km"),
    ],
)
def test_units_rule(payload: dict[str, Any], expected: str) -> None:
    """Preference first, then the country (names or ISO codes), then kilometres."""
    assert athlete_info(payload).units == expected


def test_units_from_preference(make_stack: Callable[..., Stack]) -> None:
    """A profile:read_all token's GET /athlete carries the preference, and it decides."""
    stack = make_stack()
    athlete_id = stack.sim.create_athlete(measurement_preference="meters", country="United States")[
        "id"
    ]
    code = stack.sim.issue_code(athlete_id, frozenset({"read", "profile:read_all"}))
    grant = _services(stack).strava.exchange_code(code)
    assert grant.athlete is not None and grant.athlete.units_source == "country"  # summary
    info = _services(stack).strava.get_athlete(grant.access_token)
    assert (info.units, info.units_source) == ("km", "preference")


def test_units_from_country_shown_with_a_switch(make_stack: Callable[..., Stack]) -> None:
    """No preference from Strava: the country decides, and the first page says so."""
    stack = make_stack()
    athlete_id = stack.sim.create_athlete(country="United States")["id"]
    browser = stack.connect(athlete_id)
    page = browser.last_response  # type: ignore[attr-defined]
    assert page.status_code == 200 and page.url.endswith("/dashboard")
    assert "Distances are in miles because your Strava profile says United States" in page.text
    assert "Use kilometres instead" in page.text
    stored = _athlete(stack, athlete_id)
    assert stored is not None and (stored.units, stored.units_override) == ("mi", None)
    # Shown once, on the first page: the next one does not nag.
    assert "Use kilometres instead" not in browser.get(stack.url + "/dashboard").text

    unknown = stack.sim.create_athlete(country="")["id"]
    page = stack.connect(unknown).last_response  # type: ignore[attr-defined]
    assert "Distances are in kilometres: Strava did not tell us which unit you prefer" in page.text


def test_units_switch_is_one_csrf_protected_click(make_stack: Callable[..., Stack]) -> None:
    """The switch sets the runner's units override; without the CSRF token nothing changes."""
    stack = make_stack()
    athlete_id = stack.sim.create_athlete(country="United Kingdom")["id"]
    browser = stack.connect(athlete_id)
    page = browser.last_response.text  # type: ignore[attr-defined]
    form = {"units": "km", "next": "/dashboard"}
    refused = browser.post(stack.url + "/connect/units", data=form)
    assert refused.status_code == 400
    stored = _athlete(stack, athlete_id)
    assert stored is not None and stored.units_override is None
    token = CSRF.search(page)
    assert token is not None
    switched = browser.post(stack.url + "/connect/units", data=form | {"csrf_token": token[1]})
    assert switched.status_code == 200 and switched.url.endswith("/dashboard")
    assert "Distances are now in kilometres" in switched.text
    stored = _athlete(stack, athlete_id)
    assert stored is not None and stored.effective_units == "km" and stored.units == "mi"


# -- athlete capacity -----------------------------------------------------------------------


def test_athlete_cap_page_log_metric_and_healthz(
    make_stack: Callable[..., Stack], caplog: pytest.LogCaptureFixture
) -> None:
    """Strava's 403 at the cap: a plain page for the runner; log, metric and /healthz for the
    operator, until a connection succeeds again."""
    caplog.set_level(logging.INFO)
    stack = make_stack()
    stack.sim.athlete_limit = 1
    first, second = stack.sim.create_athlete()["id"], stack.sim.create_athlete()["id"]
    stack.connect(first)
    assert requests.get(stack.url + "/healthz").json()["strava_athlete_limit"] == "ok"

    page = stack.connect(second).last_response  # type: ignore[attr-defined]
    assert page.status_code == 503
    assert "is full for now" in page.text
    assert "The person who runs" in page.text and "has been told" in page.text
    assert "Connect with Strava" not in page.text
    assert _athlete(stack, second) is None

    warnings = [r for r in caplog.records if "athlete limit" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in _secrets(stack) if s in text]
    metrics = requests.get(stack.url + "/metrics").text
    assert "legwork_strava_athlete_limit_refusals_total 1.0" in metrics
    health = requests.get(stack.url + "/healthz")
    assert health.status_code == 200
    assert health.json()["strava_athlete_limit"].startswith("full: Strava refused 1 new runner")

    stack.sim.athlete_limit = None  # the operator got Extended Access
    stack.connect(second)
    assert _athlete(stack, second) is not None
    assert requests.get(stack.url + "/healthz").json()["strava_athlete_limit"] == "ok"


# -- disconnecting --------------------------------------------------------------------------


def test_deauthorize_sends_the_access_token_parameter(make_stack: Callable[..., Stack]) -> None:
    """The default disconnect is POST /oauth/deauthorize with access_token (the simulator
    refuses anything else)."""
    stack = make_stack()
    athlete_id = stack.sim.create_athlete()["id"]
    stack.connect(athlete_id)
    assert disconnect_athlete(_services(stack), athlete_id) is True
    assert [c.status for c in stack.sim.calls("POST", "/oauth/deauthorize")] == [200]
    assert stack.sim.count("POST", "/oauth/revoke") == 0
    assert stack.sim.connected_athletes() == set()
    assert _athlete(stack, athlete_id) is None


def test_revoke_mode(make_stack: Callable[..., Stack]) -> None:
    """STRAVA_DISCONNECT=revoke uses the revoke endpoint behind the same function."""
    stack = make_stack(STRAVA_DISCONNECT="revoke")
    athlete_id = stack.sim.create_athlete()["id"]
    stack.connect(athlete_id)
    assert disconnect_athlete(_services(stack), athlete_id) is True
    assert [c.status for c in stack.sim.calls("POST", "/oauth/revoke")] == [200]
    assert stack.sim.count("POST", "/oauth/deauthorize") == 0
    assert stack.sim.connected_athletes() == set()
    assert _athlete(stack, athlete_id) is None


# -- hosts ----------------------------------------------------------------------------------


class ApiHost:
    """A stand-in for api-v3.strava.com: the API at its root (no /api/v3), relayed to the sim."""

    def __init__(self, sim_url: str) -> None:
        self.paths: list[str] = []
        app = Flask("api-host")

        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
        def relay(path: str) -> Response:
            self.paths.append(f"{request.method} /{path}")
            headers = {k: v for k, v in request.headers if k in ("Authorization", "Content-Type")}
            answer = requests.request(
                request.method,
                f"{sim_url}/api/v3/{path}",
                params=request.args,
                data=request.get_data(),
                headers=headers,
                timeout=10,
            )
            kept = {k: v for k, v in answer.headers.items() if k.startswith("X-")}
            return Response(
                answer.content, answer.status_code, kept, answer.headers["Content-Type"]
            )

        self.server, self.url = serve(app)


@pytest.fixture
def api_host(sim: Any) -> Iterator[ApiHost]:
    """The separate API host, torn down after the test."""
    host = ApiHost(sim.url)
    yield host
    host.server.shutdown()
    host.server.server_close()


def test_api_and_oauth_hosts_are_reached_separately(
    make_stack: Callable[..., Stack], api_host: ApiHost
) -> None:
    """OAuth stays on STRAVA_BASE_URL; the API goes to STRAVA_API_URL, whichever of Strava's
    two hosts stravalib builds its URL on."""
    stack = make_stack(STRAVA_API_URL=api_host.url)
    stack.subscribe()
    stack.start_worker()
    athlete_id = stack.sim.create_athlete()["id"]
    stack.connect(athlete_id)  # token exchange on the OAuth host, history import on the API
    assert stack.sim.count("POST", "/oauth/token") == 1
    assert "POST /oauth/token" not in api_host.paths
    assert any(p.startswith("GET /athlete/activities") for p in api_host.paths)
    run = stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    assert f"GET /activities/{run['id']}" in api_host.paths
    assert f"PUT /activities/{run['id']}" in api_host.paths
    assert BLOCK_START in stack.sim.activity(run["id"])["description"]

    strava: StravaAPI = _services(stack).strava
    route = strava.transport.route
    assert route("https://www.strava.com/api/v3/athlete") == api_host.url + "/athlete"
    assert route("https://api-v3.strava.com/athlete") == api_host.url + "/athlete"
    assert route("https://api-v3.strava.com/api/v3/athlete") == api_host.url + "/athlete"
    assert route("https://www.strava.com/oauth/token") == stack.sim.url + "/oauth/token"
    with stack.db.session() as session:
        sealed = session.get(Token, athlete_id)
        assert sealed is not None
        token = _services(stack).box.open(sealed.access_token)
    bearer = {"Authorization": f"Bearer {token}"}
    # A request a later stravalib would build on the new host arrives too.
    answer = strava.http.get("https://api-v3.strava.com/athlete", headers=bearer)
    assert answer.status_code == 200 and answer.json()["id"] == athlete_id
    assert api_host.paths[-1] == "GET /athlete"


def test_default_hosts() -> None:
    """Production defaults: OAuth on www.strava.com, the API under its /api/v3."""
    strava = StravaAPI("https://www.strava.com", 1, "s")
    assert strava.transport.route("https://www.strava.com/api/v3/athlete") == (
        "https://www.strava.com/api/v3/athlete"
    )
    moved = StravaAPI("https://www.strava.com", 1, "s", api_url="https://api-v3.strava.com")
    assert moved.transport.route("https://www.strava.com/api/v3/activities/1") == (
        "https://api-v3.strava.com/activities/1"
    )
    assert moved.transport.route("https://www.strava.com/oauth/token") == (
        "https://www.strava.com/oauth/token"
    )


# -- the private note -----------------------------------------------------------------------


def _private_note_runner(stack: Stack) -> int:
    """A connected runner whose notes go to the private note."""
    athlete_id = int(stack.sim.create_athlete()["id"])
    stack.connect(athlete_id)
    with stack.db.session() as session:
        session.execute(
            update(Athlete).where(Athlete.id == athlete_id).values(note_target="private_note")
        )
        session.commit()
    return athlete_id


def test_private_note_ignored_switches_to_description(stack: Stack) -> None:
    """Strava takes the PUT but keeps nothing: read back once, then the description."""
    athlete_id = _private_note_runner(stack)
    stack.sim.ignore_private_note = True
    stack.sim.reset_calls()
    run = stack.sim.create_activity(athlete_id, description="mine")
    stack.wait_idle()
    stored = stack.sim.activity(run["id"])
    assert stored["private_note"] == ""
    assert stored["description"].startswith("mine\n\n" + BLOCK_START)
    path = f"/api/v3/activities/{run['id']}"
    assert (stack.sim.count("GET", path), stack.sim.count("PUT", path)) == (2, 2)
    runner = _athlete(stack, athlete_id)
    assert runner is not None and runner.note_target == "description"


def test_private_note_checked_once_then_trusted(stack: Stack) -> None:
    """The first private note is read back; the runner's next ones are not."""
    athlete_id = _private_note_runner(stack)
    stack.sim.reset_calls()
    first = stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    second = stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    for run, gets in ((first, 2), (second, 1)):
        path = f"/api/v3/activities/{run['id']}"
        assert (stack.sim.count("GET", path), stack.sim.count("PUT", path)) == (gets, 1)
        assert BLOCK_START in stack.sim.activity(run["id"])["private_note"]
    runner = _athlete(stack, athlete_id)
    assert runner is not None and runner.note_target == "private_note"


# -- revocation noticed by a refused refresh ------------------------------------------------


def test_refused_refresh_deletes_the_runner(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """Strava refuses the refresh token: the runner is disconnected and their data deleted."""
    caplog.set_level(logging.INFO)
    athlete_id = int(stack.sim.create_athlete()["id"])
    stack.connect(athlete_id)
    stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    stack.sim.revoke_athlete(athlete_id)  # revoked on strava.com; the event never came
    with stack.db.session() as session:
        session.execute(
            update(Token).where(Token.athlete_id == athlete_id).values(expires_at=int(time.time()))
        )
        session.commit()
    stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    assert [c.status for c in stack.sim.calls("POST", "/oauth/token")][-1] == 400
    assert _athlete(stack, athlete_id) is None
    with stack.db.session() as session:
        assert session.get(Token, athlete_id) is None
        assert session.scalars(select(Event).where(Event.owner_id == athlete_id)).all() == []
    lines = [r for r in caplog.records if "refused the refresh token" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.WARNING]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in _secrets(stack) if s in text]


def _quiet_since(stack: Stack, athlete_id: int, days: int) -> None:
    """Make a runner look connected, and last heard of, `days` ago."""
    then = datetime.now(UTC) - timedelta(days=days)
    with stack.db.session() as session:
        session.execute(update(Athlete).where(Athlete.id == athlete_id).values(connected_at=then))
        session.execute(update(Event).where(Event.owner_id == athlete_id).values(received_at=then))
        session.commit()


def test_quiet_runners_are_asked_about_and_the_revoked_deleted(
    make_stack: Callable[..., Stack], caplog: pytest.LogCaptureFixture
) -> None:
    """A runner revoked on strava.com with the event lost, and silent since, is found by the
    periodic access check (one call each) and deleted; a quiet runner still connected and a
    recent one are kept, and nobody is asked twice in a period."""
    caplog.set_level(logging.INFO)
    stack = make_stack(IDLE_CHECK_INTERVAL_SECONDS=1, SWEEP_INTERVAL_SECONDS=0.5)
    stack.start_worker()  # its lease keeper queues the checks, each check interval
    revoked, quiet, recent = (int(stack.sim.create_athlete()["id"]) for _ in range(3))
    for athlete_id in (revoked, quiet, recent):
        stack.connect(athlete_id)
    stack.sim.revoke_athlete(revoked)  # the deauthorization event never came
    stack.sim.reset_calls()
    with stack.db.session() as session:  # connected long ago, but heard of today
        past = datetime.now(UTC) - timedelta(days=45)
        session.execute(update(Athlete).where(Athlete.id == recent).values(connected_at=past))
        session.commit()
    _quiet_since(stack, revoked, 45)
    _quiet_since(stack, quiet, 45)
    deadline = time.monotonic() + 20
    while _athlete(stack, revoked) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    stack.wait_idle()
    time.sleep(2)  # two more check intervals: nobody is quiet any more
    stack.wait_idle()
    assert _athlete(stack, quiet) is not None and _athlete(stack, recent) is not None
    checks = [e for e in stack.events(backfill=True) if e.aspect_type == "check"]
    assert [(e.owner_id, e.status) for e in checks] == [(quiet, "done")]
    assert stack.sim.count("GET", "/api/v3/athlete") == 2  # one call per quiet runner
    assert [r.levelno for r in caplog.records if "revoked access" in r.getMessage()] == [
        logging.WARNING
    ]


def test_refused_app_credentials_delete_nobody(make_stack: Callable[..., Stack]) -> None:
    """A refusal of the app's own secret is the operator's problem, not a revocation."""
    stack = make_stack()
    athlete_id = int(stack.sim.create_athlete()["id"])
    stack.connect(athlete_id)
    svc = _services(stack)
    svc.strava.client_secret = "wrong"
    with stack.db.session() as session:
        session.execute(
            update(Token).where(Token.athlete_id == athlete_id).values(expires_at=int(time.time()))
        )
        session.commit()
    from strava_massage.strava.client import RefreshRefused, StravaError
    from strava_massage.strava.tokens import access_token

    with pytest.raises(StravaError) as refused:
        access_token(svc.db, svc.strava, svc.box, athlete_id)
    assert not isinstance(refused.value, RefreshRefused)
    assert _athlete(stack, athlete_id) is not None


# -- the budget -----------------------------------------------------------------------------


def _spend(strava: StravaAPI) -> int:
    """Reserve from the rate budget until it is spent; how many calls that took."""
    for reserved in range(1000):
        try:
            strava.check_budget()
        except RateLimited:
            return reserved
    return 1000


def test_connect_while_the_budget_is_spent_still_connects(make_stack: Callable[..., Stack]) -> None:
    """The code is exchanged at once, whatever the budget; the history import waits."""
    stack = make_stack(STRAVA_RATE_LIMITS="3,1000")
    strava = _services(stack).strava
    assert _spend(strava) < 1000
    athlete_id = stack.sim.create_athlete()["id"]
    stack.sim.reset_calls()
    page = stack.connect(athlete_id).last_response  # type: ignore[attr-defined]
    assert page.status_code == 200 and page.url.endswith("/dashboard")
    assert [c.path for c in stack.sim.calls()] == ["/oauth/authorize", "/oauth/token"]
    runner = _athlete(stack, athlete_id)
    assert runner is not None and runner.backfill_status == "pending"
