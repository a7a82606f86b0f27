"""The connect flow's edges: forged or replayed state, missing scopes, denial, outage."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from strava_massage.models import Athlete, Token

from .conftest import Stack


def _start(stack: Stack) -> tuple[requests.Session, dict[str, str]]:
    """Begin a connect in a browser session; returns it and Strava's query parameters."""
    browser = requests.Session()
    r = browser.get(stack.url + "/connect", allow_redirects=False)
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith(stack.sim.url + "/oauth/authorize?")
    return browser, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _approve(
    stack: Stack, q: dict[str, str], granted: list[str], decision: str = "authorize"
) -> str:
    """Answer the simulator's approval page; returns the callback URL it redirects to."""
    r = requests.post(
        stack.sim.url + "/oauth/authorize",
        data={
            **q,
            "athlete_id": str(stack.sim.create_athlete()["id"]),
            "granted": granted,
            "decision": decision,
        },
        allow_redirects=False,
    )
    assert r.status_code == 302
    return r.headers["Location"]


def _athletes(stack: Stack) -> int:
    with stack.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Athlete)) or 0)


def test_authorize_redirect_carries_the_contracted_parameters(make_stack) -> None:
    stack = make_stack()
    _, q = _start(stack)
    assert q["response_type"] == "code"
    assert q["approval_prompt"] == "auto"
    assert q["scope"] == "read,activity:read_all,activity:write"
    assert q["redirect_uri"] == stack.url + "/connect/callback"
    assert q["client_id"] == str(stack.sim.client_id)
    assert len(q["state"]) >= 24


def test_forged_state_is_refused_and_nothing_stored(make_stack) -> None:
    stack = make_stack()
    browser, q = _start(stack)
    callback = _approve(stack, {**q, "state": "forged-state-value"}, q["scope"].split(","))
    r = browser.get(callback)
    assert r.status_code == 400
    assert "expired" in r.text
    assert _athletes(stack) == 0
    assert stack.sim.count("POST", "/oauth/token") == 0


def test_state_from_another_browser_is_refused(make_stack) -> None:
    stack = make_stack()
    _, q = _start(stack)
    callback = _approve(stack, q, q["scope"].split(","))
    r = requests.get(callback)  # a different browser: no session cookie
    assert r.status_code == 400
    assert _athletes(stack) == 0


def test_replayed_callback_is_refused(make_stack) -> None:
    stack = make_stack()
    browser, q = _start(stack)
    callback = _approve(stack, q, q["scope"].split(","))
    assert browser.get(callback).status_code == 200
    browser.post(stack.url + "/logout", data={})  # no CSRF token: refused, session kept
    r = browser.get(callback)
    assert r.status_code == 400
    assert stack.sim.count("POST", "/oauth/token") == 1


@pytest.mark.parametrize(
    ("granted", "missing"),
    [
        (["read", "activity:read_all"], "add the note"),
        (["read", "activity:write"], "read your runs"),
    ],
)
def test_missing_scope_explains_and_offers_a_retry(make_stack, granted, missing) -> None:
    stack = make_stack()
    browser, q = _start(stack)
    r = browser.get(_approve(stack, q, granted))
    assert r.status_code == 200
    assert "permission is missing" in r.text and missing in r.text
    assert 'href="/connect"' in r.text
    assert _athletes(stack) == 0


def test_denied_authorization_shows_a_friendly_page(make_stack) -> None:
    stack = make_stack()
    browser, q = _start(stack)
    r = browser.get(_approve(stack, q, [], decision="deny"))
    assert r.status_code == 200
    assert "nothing was stored" in r.text
    assert _athletes(stack) == 0


def test_strava_outage_during_token_exchange(make_stack) -> None:
    stack = make_stack()
    browser, q = _start(stack)
    callback = _approve(stack, q, q["scope"].split(","))
    stack.sim.stop()  # Strava goes away between approval and our token exchange
    r = browser.get(callback)
    assert r.status_code == 503
    assert "not answering" in r.text
    assert _athletes(stack) == 0


def test_success_logs_in_and_stores_tokens(make_stack) -> None:
    stack = make_stack()
    browser, q = _start(stack)
    r = browser.get(_approve(stack, q, q["scope"].split(",")))
    assert r.status_code == 200 and r.url.endswith("/dashboard")
    cookie = next(c for c in browser.cookies if c.name == "session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Token)) == 1
